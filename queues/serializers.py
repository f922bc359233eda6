"""Jobs, queues, dead letters, workers, schedules and stats as plain dicts.

One shape for every reader: the REST API returns these (its schemas describe
them) and ``taskctl`` prints them as tables or JSON.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Sum
from django.utils import timezone

from .exceptions import JobNotFound
from .models import Attempt, DeadLetter, Job, MinuteStat, Queue, Schedule, Worker, WorkerStatus
from .states import HELD, Status

RATES = ("enqueued", "succeeded", "failed", "retried", "dead")


def status_counts(queue_ids: list[int] | None = None) -> dict[int, dict[str, int]]:
    """{queue id: {status: jobs}} with every status present, from one grouped query."""
    jobs = Job.objects.all() if queue_ids is None else Job.objects.filter(queue_id__in=queue_ids)
    counts: dict[int, dict[str, int]] = {}
    for row in jobs.values("queue_id", "status").annotate(n=Count("id")).order_by():
        counts.setdefault(row["queue_id"], dict.fromkeys(Status.values, 0))[row["status"]] = row["n"]
    return counts


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(Status.values, 0)


def _since(minutes: int) -> dict[str, int]:
    # The current minute's row is still filling up: count it, so "last minute" is never zero
    # right after a burst (it covers between 1 and 2 minutes).
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=minutes)
    totals = MinuteStat.objects.filter(minute__gte=start).aggregate(**{name: Sum(name) for name in RATES})
    return {name: int(totals[name] or 0) for name in RATES}


def stats() -> dict[str, Any]:
    per_queue = status_counts()
    totals = empty_counts()
    for counts in per_queue.values():
        for status, n in counts.items():
            totals[status] += n
    workers = dict.fromkeys(WorkerStatus.values, 0)
    workers.update(dict(Worker.objects.values_list("status").annotate(n=Count("id")).order_by()))
    return {
        "counts": totals,
        "queues": [
            {"name": q.name, "paused": q.paused, "counts": per_queue.get(q.pk, empty_counts())}
            for q in Queue.objects.all()
        ],
        "dead_letters": DeadLetter.objects.filter(replayed_at=None).count(),
        "workers": workers,
        "last_minute": _since(1),
        "last_hour": _since(60),
    }


def job_out(job: Job, queue_name: str | None = None) -> dict[str, Any]:
    return {
        "id": job.pk,
        "queue": queue_name or job.queue.name,
        "task": job.task_path,
        "args": job.args,
        "kwargs": job.kwargs,
        "priority": job.priority,
        "status": job.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "timeout": job.timeout,
        "run_after": job.run_after,
        "idempotency_key": job.idempotency_key,
        "result": job.result,
        "progress": job.progress,
        "progress_message": job.progress_message,
        "enqueued_at": job.enqueued_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "worker_id": job.worker_id,
        "lease_expires_at": job.lease_expires_at,
        "last_error": job.last_error,
        "callback_url": (job.meta or {}).get("callback_url"),
    }


def job_detail(job_id: int) -> dict[str, Any]:
    job = Job.objects.select_related("queue").filter(pk=job_id).first()
    if job is None:
        raise JobNotFound(job_id)
    return {**job_out(job), "errors": [attempt_out(a) for a in job.attempt_history.all()]}


def _pick(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(row, name) for name in names}


ATTEMPT_FIELDS = (
    "number", "worker_id", "started_at", "finished_at", "duration", "outcome",
    "error_type", "error_message", "traceback",
)  # fmt: skip


def attempt_out(attempt: Attempt) -> dict[str, Any]:
    return _pick(attempt, ATTEMPT_FIELDS)


def queue_out(queue: Queue, counts: dict[str, int] | None = None) -> dict[str, Any]:
    if counts is None:
        counts = status_counts([queue.pk]).get(queue.pk, empty_counts())
    return {
        "name": queue.name,
        "paused": queue.paused,
        "concurrency": queue.concurrency,
        "rate_limit": queue.rate_limit,
        "max_attempts": queue.max_attempts,
        "timeout": queue.timeout,
        "retention": queue.retention.total_seconds(),
        "created_at": queue.created_at,
        "counts": counts,
    }


DEAD_LETTER_FIELDS = (
    "reason", "error_type", "error_message", "traceback", "created_at", "replayed_at", "replayed_by",
)  # fmt: skip


def dead_letter_out(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.pk,
        "job_id": letter.job_id,
        "queue": letter.queue_name,
        "task": letter.task_path,
        **_pick(letter, DEAD_LETTER_FIELDS),
    }


WORKER_FIELDS = (
    "id", "hostname", "pid", "queues", "concurrency", "status", "started_at", "last_heartbeat",
    "stopped_at", "jobs_done", "jobs_failed",
)  # fmt: skip


def workers_with_running(status: str | None = None) -> list[dict[str, Any]]:
    """Workers with the jobs each holds: ``reserved`` (claimed, not started) and ``running``."""
    workers = Worker.objects.all() if status is None else Worker.objects.filter(status=status)
    held: dict[tuple[str, str], int] = {
        (worker_id, job_status): n
        for worker_id, job_status, n in Job.objects.filter(status__in=HELD)
        .values_list("worker_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    }
    return [
        {
            **_pick(w, WORKER_FIELDS),
            "reserved": held.get((w.id, Status.RESERVED), 0),
            "running": held.get((w.id, Status.RUNNING), 0),
        }
        for w in workers
    ]


def schedule_out(schedule: Schedule) -> dict[str, Any]:
    return {
        "id": schedule.pk,
        "name": schedule.name,
        "cron": schedule.cron,
        "time_zone": schedule.time_zone,
        "task": schedule.task_path,
        "args": schedule.args,
        "kwargs": schedule.kwargs,
        "queue": schedule.queue.name,
        "priority": schedule.priority,
        "enabled": schedule.enabled,
        "last_run_at": schedule.last_run_at,
        "next_run_at": schedule.next_run_at,
        "last_job_id": schedule.last_job_id,
        "last_error": getattr(schedule, "last_error", ""),
    }


def queues_with_counts() -> list[dict[str, Any]]:
    counts = status_counts()
    return [queue_out(q, counts.get(q.pk, empty_counts())) for q in Queue.objects.all()]
