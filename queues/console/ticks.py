"""One tick of the live poller: read what changed once, as typed updates for the watched topics.

Runs in the poller's thread (synchronous ORM). Topics are ``events.Topic`` values: the
overview, one queue, the workers, the status of any job, one job, the dead letters.
No HTML here: ``render`` draws the updates.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Q
from django.utils import timezone

from ..filters import with_args_text
from ..models import DeadLetter, Job, Queue, Worker
from . import queries
from .events import (
    DEAD,
    JOBS,
    OVERVIEW,
    WORKERS,
    DeadLetterRecord,
    DeadLettersUpdate,
    JobRecord,
    JobsUpdate,
    JobUpdate,
    Kind,
    OverviewUpdate,
    QueueUpdate,
    Topic,
    Update,
    WorkersUpdate,
    queue_topic,
)

SLACK = timedelta(seconds=2)
"""Changes are re-read over this window: PostgreSQL transactions commit out of order,
and hosts' clocks differ a little, so a row may appear with an older ``updated_at``."""
PAGE = 500
MAX_PAGES = 10
RESYNC_SECONDS = 5.0
"""Counts are recomputed this often even without a visible change (deleted or pruned
jobs leave no trace in ``updated_at``)."""

JOB_FIELDS = ("id", "queue_id", "task_path", "status", "progress", "updated_at", "args_text")
LETTER_FIELDS = ("id", "job_id", "queue_name", "task_path", "error_type", "error_message")


class Tick:
    def __init__(self) -> None:
        self.cursor: datetime | None = None
        self.seen: dict[int, datetime] = {}
        self.queue_state: dict[int, tuple] = {}
        self.last_resync = 0.0
        self.alive_workers: list[tuple] | None = None
        self.oldest: dict[int, datetime] = {}
        """Oldest waiting job per queue, re-read on each recount: an age shown in seconds
        does not need a scan of every queued row at every tick."""
        self.dead_state: tuple[int, int] | None = None
        self.last_dead_id: int | None = None

    def run(self, topics: set[Topic], refresh: set[Topic]) -> list[Update]:
        """Updates for the watched ``topics`` that changed since the last tick, and for the
        ``refresh`` ones (newly opened sockets) whether they changed or not."""
        now = timezone.now()
        changed = self._changed_jobs(now)
        queues = list(Queue.objects.all())
        touched = {job["queue_id"] for job in changed} | self._changed_queues(queues)
        counting = OVERVIEW in topics or any(topic.kind is Kind.QUEUE for topic in topics)
        if counting and (self._workers_changed() or time.monotonic() - self.last_resync > RESYNC_SECONDS):
            # Recount everything; the poller still sends only fragments that differ.
            self.last_resync = time.monotonic()
            touched = {queue.id for queue in queues}
            self.oldest = queries.oldest_waiting(queues)
        updates: list[Update] = []
        summaries = _LazySummaries(queues, now, self.oldest)
        if OVERVIEW in topics and (OVERVIEW in refresh or touched):
            updates.append(OverviewUpdate.read(summaries.all(), now))
        for queue in queues:
            topic = queue_topic(queue.name)
            if topic in topics and (topic in refresh or queue.id in touched):
                updates.append(QueueUpdate.read(summaries.one(queue), now))
        if WORKERS in topics:
            updates.append(WorkersUpdate(queries.worker_summaries(now)))
        if JOBS in topics and changed:
            names = {queue.id: queue.name for queue in queues}
            updates.append(JobsUpdate(tuple(_record(job, names) for job in changed)))
        updates += self._job_updates(topics, refresh, changed)
        if DEAD in topics:
            updates += self._dead(DEAD in refresh)
        return updates

    def _changed_jobs(self, now: datetime) -> list[dict[str, Any]]:
        """Jobs whose ``updated_at`` moved since the last tick, read by (updated_at, id) keyset."""
        since = (self.cursor or now) - SLACK
        after: tuple[datetime, int] = (since, 0)
        changed: list[dict[str, Any]] = []
        for _ in range(MAX_PAGES):
            page = list(
                with_args_text(Job.objects.all())
                .filter(Q(updated_at__gt=after[0]) | Q(updated_at=after[0], id__gt=after[1]))
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
        alive = list(Worker.objects.alive().order_by("id").values_list("id", "queues"))
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

    def _job_updates(self, topics: set[Topic], refresh: set[Topic], changed: list[dict]) -> list[Update]:
        watched = {topic.key for topic in topics if topic.kind is Kind.JOB}
        wanted = {job["id"] for job in changed if job["id"] in watched}
        wanted |= {topic.key for topic in refresh if topic.kind is Kind.JOB}
        updates: list[Update] = []
        for job_id in sorted(wanted & watched):
            job = Job.objects.select_related("queue").filter(id=job_id).first()
            attempts = tuple(job.attempt_history.all()) if job is not None else ()
            updates.append(JobUpdate(job_id, job, attempts))
        return updates

    def _dead(self, refresh: bool) -> list[Update]:
        summary = DeadLetter.objects.filter(replayed_at=None).aggregate(n=Count("id"), newest=Max("id"))
        newest = summary["newest"] or 0
        state = (summary["n"], newest)
        if self.last_dead_id is None:
            self.last_dead_id = newest
        new = list(
            DeadLetter.objects.filter(id__gt=self.last_dead_id)
            .order_by("id")
            .values_list(*LETTER_FIELDS)[:PAGE]
        )
        self.last_dead_id = max([newest if len(new) < PAGE else new[-1][0], self.last_dead_id])
        if not refresh and state == self.dead_state and not new:
            return []
        self.dead_state = state
        return [DeadLettersUpdate(queries.dead_groups(), tuple(DeadLetterRecord(*letter) for letter in new))]


def _record(job: dict[str, Any], names: dict[int, str]) -> JobRecord:
    return JobRecord(
        id=job["id"],
        queue=names.get(job["queue_id"], ""),
        task=job["task_path"],
        status=job["status"],
        progress=job["progress"],
        args_text=job["args_text"] or "",
    )


class _LazySummaries:
    """Per-queue counts computed at most once per tick, for the overview and queue pages alike."""

    def __init__(self, queues: list[Queue], now: datetime, oldest: dict[int, datetime]) -> None:
        self.queues = queues
        self.now = now
        self.oldest = oldest
        self._rows: dict[int, queries.QueueSummary] | None = None

    def all(self) -> list[queries.QueueSummary]:
        if self._rows is None:
            summaries = queries.queue_summaries(self.queues, self.now, self.oldest)
            self._rows = {row.queue.id: row for row in summaries}
        return list(self._rows.values())

    def one(self, queue: Queue) -> queries.QueueSummary:
        if self._rows is not None:
            return self._rows[queue.id]
        return queries.queue_summaries([queue], self.now, self.oldest)[0]
