"""The worker registry: each runworker process's row, its heartbeat, totals and stop.

A worker whose heartbeat expires is found lost by ``maintenance.recover_lost``.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import F
from django.utils import timezone

from ..conf import conf
from ..models import Worker, WorkerStatus


def lease_duration() -> timedelta:
    return timedelta(seconds=conf.QUEUES_HEARTBEAT_INTERVAL * conf.QUEUES_LOST_AFTER_HEARTBEATS)


def register_worker(worker: Worker) -> Worker:
    now = timezone.now()
    worker.started_at = worker.last_heartbeat = now
    worker.expires_at = now + lease_duration()
    worker.status = WorkerStatus.ALIVE
    worker.save(force_insert=True)
    return worker


def heartbeat(worker_id: str) -> None:
    """The worker is alive: push its expiry one lease further."""
    now = timezone.now()
    Worker.objects.filter(id=worker_id).update(
        last_heartbeat=now, expires_at=now + lease_duration(), status=WorkerStatus.ALIVE
    )


def count_work(worker_id: str, done: int, failed: int) -> None:
    """Add finished attempts to a worker's totals (batched by the worker, with its heartbeat)."""
    if done or failed:
        Worker.objects.filter(id=worker_id).update(
            jobs_done=F("jobs_done") + done, jobs_failed=F("jobs_failed") + failed
        )


def set_concurrency(worker_id: str, concurrency: int) -> None:
    """An autoscaling worker grew or shrank its pool of children."""
    Worker.objects.filter(id=worker_id).update(concurrency=concurrency)


def stop_worker(worker_id: str) -> tuple[int, int]:
    """The worker stopped cleanly; returns its totals (jobs done, jobs failed) for its last log line."""
    stopped = Worker.objects.filter(id=worker_id)
    stopped.update(status=WorkerStatus.STOPPED, stopped_at=timezone.now())
    return stopped.values_list("jobs_done", "jobs_failed").get()
