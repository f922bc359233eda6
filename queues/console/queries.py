"""What the console pages show, read with bounded queries.

Pages and the live poller both call these, so a fragment pushed over the socket
is the same as the one a page load renders.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count as DbCount
from django.db.models import Max, Min, Sum
from django.utils import timezone

from ..models import DeadLetter, Job, MinuteStat, Queue, Worker, WorkerStatus
from ..states import TERMINAL, Status
from .counts import EXACT_UP_TO, Count, capped_counts, estimate, table_estimates

SHOWN_STATUSES = (
    Status.SCHEDULED,
    Status.QUEUED,
    Status.RESERVED,
    Status.RUNNING,
    Status.SUCCEEDED,
    Status.DEAD,
    Status.CANCELLED,
)
CHART_MINUTES = 60
RECENT_WORKERS = timedelta(hours=1)


@dataclass
class QueueRow:
    """One queue as the overview and the queue page show it."""

    queue: Queue
    counts: dict[str, Count]
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


def status_counts(queues: list[Queue]) -> dict[int, dict[str, Count]]:
    """Counts by queue and status: exact for live statuses, estimated for huge finished ones.

    Waiting and running jobs are always counted (with a cap): they change every second
    and an operator acts on them. A finished status that the statistics put well above
    the cap is shown as that estimate, so a tick never walks a million succeeded rows.
    """
    pairs = [(queue.id, status.value) for queue in queues for status in SHOWN_STATUSES]
    guesses = table_estimates([pair for pair in pairs if pair[1] in TERMINAL])
    huge = {pair for pair, guess in guesses.items() if guess > 2 * EXACT_UP_TO}
    result: dict[int, dict[str, Count]] = defaultdict(dict)
    for (queue_id, status), n in capped_counts([pair for pair in pairs if pair not in huge]).items():
        if n <= EXACT_UP_TO:
            result[queue_id][status] = Count(n, True)
        else:
            result[queue_id][status] = estimate(Job.objects.filter(queue_id=queue_id, status=status), floor=n)
    for queue_id, status in huge:
        result[queue_id][status] = Count(guesses[(queue_id, status)], False)
    return {queue.id: {status: result[queue.id][status] for status in SHOWN_STATUSES} for queue in queues}


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


def queue_rows(
    queues: list[Queue], now: datetime | None = None, oldest: dict[int, datetime] | None = None
) -> list[QueueRow]:
    """``oldest`` may come from a recent call of ``oldest_waiting`` (the poller's cache)."""
    now = now or timezone.now()
    counts = status_counts(queues)
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
            QueueRow(
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
class WorkerRow:
    worker: Worker
    reserved: int  # claimed by it, code not started
    running: int
    heartbeat_age: float


def worker_rows(now: datetime | None = None) -> list[WorkerRow]:
    now = now or timezone.now()
    workers = Worker.objects.exclude(
        status__in=[WorkerStatus.STOPPED, WorkerStatus.LOST], last_heartbeat__lt=now - RECENT_WORKERS
    )
    held = {
        (worker_id, status): n
        for worker_id, status, n in Job.objects.held()
        .values("worker_id", "status")
        .annotate(n=DbCount("id"))
        .values_list("worker_id", "status", "n")
    }
    order = {WorkerStatus.ALIVE: 0, WorkerStatus.LOST: 1, WorkerStatus.STOPPED: 2}
    rows = [
        WorkerRow(
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
        .annotate(n=DbCount("id"), last=Max("created_at"))
        .order_by("-n", "-last")[:limit]
    )
    return [DeadGroup(r["error_type"], r["error_message"], r["n"], r["last"]) for r in rows]
