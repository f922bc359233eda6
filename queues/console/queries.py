"""What the console pages show, read with bounded queries.

Pages and the live poller both call these, so a fragment pushed over the socket
is the same as the one a page load renders.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Max, Min, Sum
from django.utils import timezone

from ..counts import StatusCounts, status_counts
from ..filters import DeadLetterFilter, JobFilter
from ..models import DeadLetter, Job, MinuteStat, Queue, Worker, WorkerStatus
from ..states import Status
from .paging import Page, keyset

CHART_MINUTES = 60
RECENT_WORKERS = timedelta(hours=1)


@dataclass
class QueueSummary:
    """One queue as the overview and the queue page show it."""

    queue: Queue
    counts: StatusCounts
    finished_last_hour: int = 0
    failed_last_hour: int = 0
    oldest_waiting: datetime | None = None
    served: bool = True

    @property
    def failure_rate(self) -> float | None:
        total = self.finished_last_hour + self.failed_last_hour
        return None if not total else self.failed_last_hour / total

    @property
    def per_minute(self) -> float:
        return self.finished_last_hour / CHART_MINUTES

    @property
    def backlog_unserved(self) -> bool:
        """Jobs are waiting and no live worker takes this queue: nobody will run them."""
        return bool(self.counts[Status.QUEUED]) and not self.served and not self.queue.paused


def alive_workers() -> list[Worker]:
    return list(Worker.objects.alive())


def oldest_waiting(queues: list[Queue]) -> dict[int, datetime]:
    """When the longest-waiting queued job of each queue became due (reads every queued row)."""
    return dict(
        Job.objects.filter(queue__in=queues, status=Status.QUEUED)
        .values("queue_id")
        .annotate(oldest=Min("run_after"))
        .values_list("queue_id", "oldest")
    )


def queue_summaries(
    queues: list[Queue], now: datetime | None = None, oldest: dict[int, datetime] | None = None
) -> list[QueueSummary]:
    """``oldest`` may come from a recent call of ``oldest_waiting`` (the poller's cache)."""
    now = now or timezone.now()
    counts = status_counts(queues, bounded=True)
    since = now - timedelta(minutes=CHART_MINUTES)
    finished = {
        row["queue_name"]: row
        for row in MinuteStat.objects.filter(minute__gte=since, queue_name__in=[q.name for q in queues])
        .values("queue_name")
        .annotate(ok=Sum("succeeded"), failed=Sum("failed"))
    }
    if oldest is None:
        oldest = oldest_waiting(queues)
    workers = alive_workers()
    rows = []
    for queue in queues:
        stats = finished.get(queue.name, {})
        rows.append(
            QueueSummary(
                queue=queue,
                counts=counts[queue.id],
                finished_last_hour=stats.get("ok") or 0,
                failed_last_hour=stats.get("failed") or 0,
                oldest_waiting=oldest.get(queue.id),
                served=any(not w.queues or queue.name in w.queues for w in workers),
            )
        )
    return rows


def throughput(queue_names: list[str] | None = None, now: datetime | None = None) -> dict[str, list]:
    """Jobs finished and failed per minute over the last hour, from the rollup workers write."""
    now = (now or timezone.now()).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=CHART_MINUTES - 1)
    stats = MinuteStat.objects.filter(minute__gte=start)
    if queue_names is not None:
        stats = stats.filter(queue_name__in=queue_names)
    per_minute: dict[datetime, list[int]] = defaultdict(lambda: [0, 0])
    for minute, ok, failed in (
        stats.values("minute")
        .annotate(ok=Sum("succeeded"), bad=Sum("failed"))
        .values_list("minute", "ok", "bad")
    ):
        per_minute[minute][0] += ok or 0
        per_minute[minute][1] += failed or 0
    minutes = [start + timedelta(minutes=i) for i in range(CHART_MINUTES)]
    return {
        "t": [int(m.timestamp()) for m in minutes],
        "succeeded": [per_minute[m][0] for m in minutes],
        "failed": [per_minute[m][1] for m in minutes],
    }


@dataclass
class WorkerSummary:
    """One worker as the workers page shows it."""

    worker: Worker
    reserved: int  # claimed by it, code not started
    running: int
    heartbeat_age: float


def worker_summaries(now: datetime | None = None) -> list[WorkerSummary]:
    now = now or timezone.now()
    workers = Worker.objects.exclude(
        status__in=[WorkerStatus.STOPPED, WorkerStatus.LOST], last_heartbeat__lt=now - RECENT_WORKERS
    )
    held = {
        (worker_id, status): n
        for worker_id, status, n in Job.objects.held()
        .values("worker_id", "status")
        .annotate(n=Count("id"))
        .values_list("worker_id", "status", "n")
    }
    order = {WorkerStatus.ALIVE: 0, WorkerStatus.LOST: 1, WorkerStatus.STOPPED: 2}
    rows = [
        WorkerSummary(
            w,
            held.get((w.id, Status.RESERVED), 0),
            held.get((w.id, Status.RUNNING), 0),
            max((now - w.last_heartbeat).total_seconds(), 0.0),
        )
        for w in workers
    ]
    rows.sort(key=lambda row: (order.get(row.worker.status, 3), row.worker.hostname, row.worker.pid))
    return rows


@dataclass
class DeadGroup:
    error_type: str
    error_message: str
    count: int
    last_at: datetime


def dead_groups(limit: int = 50) -> list[DeadGroup]:
    """Open dead letters grouped by error, biggest group first."""
    rows = (
        DeadLetter.objects.filter(replayed_at=None)
        .values("error_type", "error_message")
        .annotate(n=Count("id"), last=Max("created_at"))
        .order_by("-n", "-last")[:limit]
    )
    return [DeadGroup(r["error_type"], r["error_message"], r["n"], r["last"]) for r in rows]


def newest_id(model: type[Job] | type[DeadLetter]) -> int:
    return model.objects.order_by("-id").values_list("id", flat=True).first() or 0


def job_list(wanted: JobFilter, as_of: int, before: str | None = None, after: str | None = None) -> Page:
    """The jobs a list page shows: matching, not newer than job ``as_of`` (the newest when
    the page is drawn, so that its socket counts every later one as new), one keyset page."""
    jobs = wanted.queryset(Job.objects.select_related("queue")).filter(id__lte=as_of)
    return keyset(jobs, before, after)


def dead_letter_list(
    wanted: DeadLetterFilter, as_of: int, before: str | None = None, after: str | None = None
) -> Page:
    letters = wanted.queryset(DeadLetter.objects.select_related("job")).filter(id__lte=as_of)
    return keyset(letters, before, after)
