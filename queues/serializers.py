"""Jobs, queues, dead letters, workers, schedules and stats as plain dicts.

One shape for every reader: the REST API returns these (its schemas describe
them) and ``taskctl`` prints them as tables or JSON. An encrypted job's arguments,
result and error texts read "🔒 encrypted" unless the reader may see them (``reveal``:
``rules.sees_payloads``), then they are decrypted here (``queues.encryption``).
"""

from __future__ import annotations

import json
from datetime import timedelta
from operator import attrgetter
from typing import Any

from django.db.models import Count, Sum
from django.utils import timezone

from . import offload
from .counts import as_numbers, status_counts
from .encryption import (
    HIDDEN,
    is_encrypted,
    open_arguments,
    opened_result,
    shown_arguments,
    shown_result,
    shown_text,
)
from .exceptions import JobNotFound, PayloadUnavailable
from .models import (
    Attempt,
    DeadLetter,
    Job,
    MinuteStat,
    OffloadedPayload,
    Queue,
    Schedule,
    Worker,
    WorkerStatus,
)
from .states import HELD, Status

RATES = ("enqueued", "succeeded", "failed", "retried", "dead")


def _since(minutes: int) -> dict[str, int]:
    # The current minute's row is still filling up: count it, so "last minute" is never zero
    # right after a burst (it covers between 1 and 2 minutes).
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=minutes)
    totals = MinuteStat.objects.filter(minute__gte=start).aggregate(**{name: Sum(name) for name in RATES})
    return {name: int(totals[name] or 0) for name in RATES}


def stats() -> dict[str, Any]:
    queues = list(Queue.objects.all())
    per_queue = {queue_id: as_numbers(counts) for queue_id, counts in status_counts(queues).items()}
    totals = dict.fromkeys(Status.values, 0)
    for counts in per_queue.values():
        for status, n in counts.items():
            totals[status] += n
    workers = dict.fromkeys(WorkerStatus.values, 0)
    workers.update(dict(Worker.objects.values_list("status").annotate(n=Count("id")).order_by()))
    return {
        "counts": totals,
        "queues": [{"name": q.name, "paused": q.paused, "counts": per_queue[q.pk]} for q in queues],
        "dead_letters": DeadLetter.objects.filter(replayed_at=None).count(),
        "workers": workers,
        "last_minute": _since(1),
        "last_hour": _since(60),
    }


def payloads(job: Job, fetch: bool = False, reveal: bool = False) -> dict[str, Any]:
    """A job's args, kwargs and result as a reader may see them, and where those offloaded
    are (``queues.offload``).

    Without ``fetch`` an offloaded part shows as empty (``[]``, ``{}``, ``null``) beside its
    reference; with it the content is read back from the storage (or the reference
    carries the ``error`` that stopped it). An encrypted job's parts read "🔒 encrypted"
    unless the reader may see them (``reveal``), offloaded or not: what a storage holds
    for it is sealed text, opened here after it is read back.
    """
    found = offload.references(job)
    hidden = is_encrypted(job) and not reveal
    args, kwargs, result = job.args, job.kwargs, job.result
    if found["arguments"]:
        args, kwargs = (HIDDEN, HIDDEN) if hidden else ([], {})
    if found["result"]:
        result = HIDDEN if hidden else None
    if fetch and not hidden:
        try:
            if found["arguments"]:
                args, kwargs = offload.job_arguments(job)
            if found["result"]:
                result = offload.job_result(job)
        except PayloadUnavailable as exc:
            for reference in found.values():
                if reference:
                    reference["error"] = str(exc)
    args, kwargs = shown_arguments(args, kwargs, reveal)
    return {"args": args, "kwargs": kwargs, "result": shown_result(result, reveal), "offloaded": found}


def payload_text(job: Job, part: str) -> str:
    """The JSON text of one part of a job (``arguments`` or ``result``) in the clear: read
    back from its storage if offloaded, then opened if encrypted. The caller decides who may
    see it; PayloadUnavailable or PayloadKeyError when it cannot be read."""
    text = offload.content(job, part)
    if not is_encrypted(job):
        return text
    value = json.loads(text)
    if part == OffloadedPayload.ARGUMENTS:
        args, kwargs = open_arguments(value["args"], value["kwargs"])
        return json.dumps({"args": args, "kwargs": kwargs})
    return json.dumps(opened_result(value))


def job_out(
    job: Job, queue_name: str | None = None, reveal: bool = False, fetch: bool = False
) -> dict[str, Any]:
    shown = payloads(job, fetch, reveal)
    return {
        "id": job.pk,
        "queue": queue_name or job.queue.name,
        "task": job.task_path,
        "args": shown["args"],
        "kwargs": shown["kwargs"],
        "encrypted": is_encrypted(job),
        "priority": job.priority,
        "status": job.status,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "timeout": job.timeout,
        "run_after": job.run_after,
        "idempotency_key": job.idempotency_key,
        "result": shown["result"],
        "offloaded": shown["offloaded"],
        "progress": job.progress,
        "progress_message": job.progress_message,
        "enqueued_at": job.enqueued_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "worker_id": job.worker_id,
        "lease_expires_at": job.lease_expires_at,
        "last_error": shown_text(job.last_error, reveal),
        "callback_url": (job.meta or {}).get("callback_url"),
    }


def job_detail(job_id: int, reveal: bool = False) -> dict[str, Any]:
    job = Job.objects.select_related("queue").filter(pk=job_id).first()
    if job is None:
        raise JobNotFound(job_id)
    errors = [attempt_out(a, reveal) for a in job.attempt_history.all()]
    return {**job_out(job, reveal=reveal, fetch=True), "errors": errors}


def _pick(row: Any, names: tuple[str, ...], read: dict[str, str] | None = None) -> dict[str, Any]:
    """``names`` of ``row``; ``read`` gives the attribute (dotted) behind a name that differs."""
    read = read or {}
    return {name: attrgetter(read.get(name, name))(row) for name in names}


ATTEMPT_FIELDS = (
    "number", "worker_id", "started_at", "finished_at", "duration", "outcome",
    "error_type", "error_message", "traceback",
)  # fmt: skip


SEALABLE = ("error_message", "traceback")
"""The texts of attempts and dead letters that an encrypted job stores sealed."""


def _pick_shown(
    row: Any, names: tuple[str, ...], reveal: bool, read: dict[str, str] | None = None
) -> dict[str, Any]:
    picked = _pick(row, names, read)
    return {**picked, **{name: shown_text(picked[name], reveal) for name in SEALABLE}}


def attempt_out(attempt: Attempt, reveal: bool = False) -> dict[str, Any]:
    return _pick_shown(attempt, ATTEMPT_FIELDS, reveal)


def queue_out(queue: Queue, counts: dict[str, int] | None = None) -> dict[str, Any]:
    if counts is None:
        counts = as_numbers(status_counts([queue])[queue.pk])
    return {
        "name": queue.name,
        "paused": queue.paused,
        "concurrency": queue.concurrency,
        "rate_limit": queue.rate_limit,
        "max_attempts": queue.max_attempts,
        "timeout": queue.timeout,
        "retention": queue.retention.total_seconds(),
        "encrypt": queue.encrypt,
        "created_at": queue.created_at,
        "counts": counts,
    }


DEAD_LETTER_FIELDS = (
    "id", "job_id", "queue", "task", "reason", "error_type", "error_message", "traceback", "created_at",
    "replayed_at", "replayed_by",
)  # fmt: skip


def dead_letter_out(letter: DeadLetter, reveal: bool = False) -> dict[str, Any]:
    read = {"id": "pk", "queue": "queue_name", "task": "task_path"}
    return _pick_shown(letter, DEAD_LETTER_FIELDS, reveal, read)


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


SCHEDULE_FIELDS = (
    "id", "name", "cron", "time_zone", "task", "args", "kwargs", "queue", "priority", "enabled",
    "last_run_at", "next_run_at", "last_job_id",
)  # fmt: skip


def schedule_out(schedule: Schedule) -> dict[str, Any]:
    fields = _pick(schedule, SCHEDULE_FIELDS, {"id": "pk", "task": "task_path", "queue": "queue.name"})
    return {**fields, "last_error": getattr(schedule, "last_error", "")}


def queues_with_counts() -> list[dict[str, Any]]:
    queues = list(Queue.objects.all())
    counts = status_counts(queues)
    return [queue_out(q, as_numbers(counts[q.pk])) for q in queues]
