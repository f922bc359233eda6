"""How attempts end: success, a retry after a back-off, or death with a dead letter.

The worker (and the TCP protocol's ACK and NACK, and the recovery of lost workers)
report finished attempts here in batches. Each write is guarded by the status, the
attempt number and the worker that held the job, so a late or duplicate report
changes nothing. The per-minute rollups, the circuit breakers, completion webhooks
and workflows (``dependencies``) are fed in the same transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from .. import flow_control, webhooks
from ..engines import get_engine
from ..engines.rows import Succeeded
from ..models import Attempt, DeadLetter, Job, RuntimeBucket
from ..retry import backoff_seconds
from ..states import TRANSITIONS, Outcome, Status
from ..values import Finished
from . import dependencies


def finish(worker_id: str, finished: Sequence[Finished]) -> set[int]:
    """Record a batch of finished attempts of jobs held by ``worker_id``.

    Successes are written with one statement; failures are retried with back-off or
    sent to the dead letters. Returns the ids whose outcome was recorded; the others
    were no longer held by this attempt (recovered or cancelled) and are ignored.
    """
    if not finished:
        return set()
    now = timezone.now()
    with transaction.atomic():
        applied = _succeed(worker_id, [f for f in finished if f.outcome == Outcome.SUCCEEDED], now)
        retried, dead = set(), set()
        for item in finished:
            if item.outcome != Outcome.SUCCEEDED:
                status = _fail(worker_id, item, now)
                if status is not None:
                    applied.add(item.job.id)
                    (dead if status == Status.DEAD else retried).add(item.job.id)
        recorded = [f for f in finished if f.job.id in applied]
        # Workflow steps (the claim flags them with has_callback, so plain jobs cost nothing
        # here): counters, dependents released or cancelled, callbacks due.
        dependencies.finished(
            {
                f.job.id: Status.DEAD if f.job.id in dead else Status.SUCCEEDED
                for f in recorded
                if f.job.has_callback and (f.outcome == Outcome.SUCCEEDED or f.job.id in dead)
            },
            now,
        )
        # The engine wrote the attempts of successes with them.
        Attempt.objects.bulk_create(
            attempt_row(worker_id, f) for f in recorded if f.outcome != Outcome.SUCCEEDED
        )
        _count_finished(recorded, retried, dead, now)
        flow_control.record_outcomes(recorded, now)
        webhooks.enqueue_deliveries(
            [
                f.job.id
                for f in recorded
                if f.job.has_callback and (f.outcome == Outcome.SUCCEEDED or f.job.id in dead)
            ]
        )
    return applied


def attempt_row(worker_id: str, f: Finished) -> Attempt:
    """The attempt-history row of one finished (or stopped) attempt."""
    return Attempt(
        job_id=f.job.id,
        number=f.job.attempt,
        worker_id=worker_id,
        started_at=f.started_at,
        finished_at=f.finished_at,
        duration=f.duration,
        outcome=f.outcome,
        error_type=f.error_type,
        error_message=f.error_message,
        traceback=f.traceback,
    )


def _succeed(worker_id: str, items: Sequence[Finished], now: datetime) -> set[int]:
    if not items:
        return set()
    rows = [
        Succeeded(f.job.id, f.job.attempt, f.result_json, f.started_at, f.finished_at, f.duration)
        for f in items
    ]
    return get_engine().succeed(worker_id, rows, now)


def _fail(worker_id: str, item: Finished, now: datetime) -> Status | None:
    """Retry the job after a back-off, or kill it; None if the attempt was no longer held."""
    job = item.job
    retry = item.retryable and job.has_attempts_left
    status = Status.SCHEDULED if retry else Status.DEAD
    error = f"{item.error_type}: {item.error_message}" if item.error_message else item.error_type
    changes: dict[str, Any] = {
        "status": status,
        "updated_at": now,
        "lease_expires_at": None,
        "last_error": error,
    }
    if retry:
        changes["run_after"] = now + timedelta(seconds=backoff_seconds(job.attempt - job.attempt_offset))
    else:
        changes["finished_at"] = now
    updated = Job.objects.filter(
        id=job.id, status__in=TRANSITIONS["fail"], attempts=job.attempt, worker_id=worker_id
    ).update(**changes)
    if not updated:
        return None
    if not retry:
        DeadLetter.objects.create(
            job_id=job.id,
            queue_name=job.queue_name,
            task_path=job.task_path,
            reason="not retryable" if not item.retryable else "attempts exhausted",
            error_type=item.error_type,
            error_message=item.error_message,
            traceback=item.traceback,
            created_at=now,
        )
    return status


def _count_finished(recorded: Sequence[Finished], retried: set[int], dead: set[int], now: datetime) -> None:
    minute = now.replace(second=0, microsecond=0)
    counts: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0, 0, 0, 0.0])
    for item in recorded:
        row = counts[(item.job.queue_name, item.job.task_path)]
        row[0 if item.outcome == Outcome.SUCCEEDED else 1] += 1
        row[2] += item.job.id in retried
        row[3] += item.job.id in dead
        row[4] += item.duration
    get_engine().upsert_minute_stats(
        [(minute, queue, task, 0, *values) for (queue, task), values in counts.items()]
    )
    runtimes: dict[tuple[str, str, float], int] = defaultdict(int)
    for item in recorded:
        runtimes[(item.job.queue_name, item.job.task_path, RuntimeBucket.bound_for(item.duration))] += 1
    get_engine().upsert_runtime_buckets([(minute, *key, count) for key, count in runtimes.items()])
