"""One tick of the live poller: read what changed once, render each watched topic once.

Runs in the poller's thread (synchronous ORM). Topics: ``overview``,
``queue.<name>``, ``workers``, ``jobs`` (status of any job), ``job.<id>`` (one
job's detail) and ``dead`` (the dead letters).
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count as DbCount
from django.db.models import Max, Q
from django.template.loader import render_to_string
from django.utils import timezone

from ..models import DeadLetter, Job, Queue, Worker
from . import fragments, queries

SLACK = timedelta(seconds=2)
"""Changes are re-read over this window: PostgreSQL transactions commit out of order,
and hosts' clocks differ a little, so a row may appear with an older ``updated_at``."""
PAGE = 500
MAX_PAGES = 10
RESYNC_SECONDS = 5.0
"""Counts are recomputed this often even without a visible change (deleted or pruned
jobs leave no trace in ``updated_at``)."""

JOB_FIELDS = ("id", "queue_id", "task_path", "status", "attempts", "progress", "updated_at", "args")


class Tick:
    def __init__(self) -> None:
        self.cursor: datetime | None = None
        self.seen: dict[int, datetime] = {}
        self.queue_state: dict[int, tuple] = {}
        self.last_html: dict[str, str] = {}
        self.last_resync = 0.0
        self.alive_workers: list[tuple] | None = None
        self.oldest: dict[int, datetime] = {}
        """Oldest waiting job per queue, re-read on each recount: an age shown in seconds
        does not need a scan of every queued row at every tick."""
        self.dead_state: tuple[int, int] | None = None
        self.last_dead_id: int | None = None

    def run(self, topics: set[str], refresh: set[str], rows: set[int]) -> list[tuple[str, dict]]:
        now = timezone.now()
        changed = self._changed_jobs(now)
        queues = list(Queue.objects.all())
        touched = {job["queue_id"] for job in changed} | self._changed_queues(queues)
        counting = "overview" in topics or any(topic.startswith("queue.") for topic in topics)
        if counting and (self._workers_changed() or time.monotonic() - self.last_resync > RESYNC_SECONDS):
            # Recount everything; _html still sends only what differs from last time.
            self.last_resync = time.monotonic()
            touched = {queue.id for queue in queues}
            self.oldest = queries.oldest_waiting(queues)
        names = {queue.id: queue.name for queue in queues}
        events: list[tuple[str, dict]] = []
        rows_by_queue = _LazyRows(queues, now, self.oldest)
        if "overview" in topics and ("overview" in refresh or touched):
            self._html(
                events, "overview", fragments.overview(rows_by_queue.all(), now), force="overview" in refresh
            )
        for queue in queues:
            topic = f"queue.{queue.name}"
            if topic in topics and (topic in refresh or queue.id in touched):
                html = fragments.queue(rows_by_queue.one(queue), now)
                self._html(events, topic, html, force=topic in refresh)
        if "workers" in topics:
            self._html(events, "workers", fragments.workers(now), force="workers" in refresh)
        if "jobs" in topics:
            self._jobs(events, changed, rows, names)
        self._job_details(events, topics, refresh, changed)
        if "dead" in topics:
            self._dead(events, "dead" in refresh)
        return events

    def _html(self, events: list, topic: str, html: str, force: bool) -> None:
        """Send a topic's fragments unless they are exactly what its sockets already have."""
        if force or self.last_html.get(topic) != html:
            self.last_html[topic] = html
            events.append((topic, {"type": "console.html", "html": html}))

    def _changed_jobs(self, now: datetime) -> list[dict[str, Any]]:
        """Jobs whose ``updated_at`` moved since the last tick, read by (updated_at, id) keyset."""
        since = (self.cursor or now) - SLACK
        after: tuple[datetime, int] = (since, 0)
        changed: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            page = list(
                Job.objects.filter(Q(updated_at__gt=after[0]) | Q(updated_at=after[0], id__gt=after[1]))
                .order_by("updated_at", "id")
                .values(*JOB_FIELDS)[:PAGE]
            )
            for job in page:
                if self.seen.get(job["id"]) != job["updated_at"]:
                    self.seen[job["id"]] = job["updated_at"]
                    changed.append(job)
            if len(page) < PAGE:
                break
            after = (page[-1]["updated_at"], page[-1]["id"])
        newest = max((job["updated_at"] for job in changed), default=self.cursor or now)
        # Never ahead of this clock: a host whose clock runs fast must not make the
        # poller skip what hosts with slower clocks write next.
        self.cursor = min(max(newest, self.cursor or newest), now)
        horizon = self.cursor - SLACK
        self.seen = {job_id: at for job_id, at in self.seen.items() if at >= horizon}
        return changed

    def _workers_changed(self) -> bool:
        """A worker started, stopped or was lost: which queues are served may have changed."""
        alive = list(
            Worker.objects.alive().order_by("id").values_list("id", "queues")
        )
        changed, self.alive_workers = alive != self.alive_workers, alive
        return changed

    def _changed_queues(self, queues: list[Queue]) -> set[int]:
        state = {
            q.id: (q.name, q.paused, q.concurrency, q.rate_limit, q.max_attempts, q.timeout, q.retention)
            for q in queues
        }
        changed = {queue_id for queue_id, row in state.items() if self.queue_state.get(queue_id) != row}
        self.queue_state = state
        return changed

    def _jobs(self, events: list, changed: list[dict], rows: set[int], names: dict[int, str]) -> None:
        ids = {job["id"] for job in changed}
        extra = rows - ids
        if extra:
            changed = changed + list(Job.objects.filter(id__in=extra).values(*JOB_FIELDS))
        if changed:
            records = [fragments.job_record(job, names) for job in changed]
            events.append(("jobs", {"type": "jobs.changed", "jobs": records}))

    def _job_details(self, events: list, topics: set[str], refresh: set[str], changed: list[dict]) -> None:
        watched = {int(topic.split(".", 1)[1]) for topic in topics if topic.startswith("job.")}
        wanted = {job["id"] for job in changed if job["id"] in watched}
        wanted |= {int(t.split(".", 1)[1]) for t in refresh if t.startswith("job.")}
        for job_id in sorted(wanted & watched):
            job = Job.objects.select_related("queue").filter(id=job_id).first()
            events.append((f"job.{job_id}", {"type": "job.changed", **fragments.job_detail(job, job_id)}))

    def _dead(self, events: list, refresh: bool) -> None:
        summary = DeadLetter.objects.filter(replayed_at=None).aggregate(n=DbCount("id"), newest=Max("id"))
        newest = summary["newest"] or 0
        state = (summary["n"], newest)
        if self.last_dead_id is None:
            self.last_dead_id = newest
        new = list(
            DeadLetter.objects.filter(id__gt=self.last_dead_id)
            .order_by("id")
            .values("id", "job_id", "queue_name", "task_path", "error_type", "error_message")[:PAGE]
        )
        self.last_dead_id = max([newest if len(new) < PAGE else new[-1]["id"], self.last_dead_id])
        if not refresh and state == self.dead_state and not new:
            return
        self.dead_state = state
        groups = render_to_string("queues/live/dead_groups.html", {"groups": queries.dead_groups()})
        events.append(("dead", {"type": "dead.changed", "html": groups, "letters": new}))


class _LazyRows:
    """Per-queue counts computed at most once per tick, for the overview and queue pages alike."""

    def __init__(self, queues: list[Queue], now: datetime, oldest: dict[int, datetime]) -> None:
        self.queues = queues
        self.now = now
        self.oldest = oldest
        self._rows: dict[int, queries.QueueRow] | None = None

    def all(self) -> list[queries.QueueRow]:
        if self._rows is None:
            self._rows = {row.queue.id: row for row in queries.queue_rows(self.queues, self.now, self.oldest)}
        return list(self._rows.values())

    def one(self, queue: Queue) -> queries.QueueRow:
        if self._rows is not None:
            return self._rows[queue.id]
        return queries.queue_rows([queue], self.now, self.oldest)[0]
