"""What a worker (or a TCP client) holds: claims, lease renewals, progress and hand-backs.

A claim takes due jobs in one statement and leases them to the claimer; the holder
renews the leases while it runs them and gives back those it never started (or
whose attempt a shutdown stopped). A lease that runs out is recovered by
``maintenance.recover_lost``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import timedelta
from functools import partial
from typing import Any, NamedTuple

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .. import flow_control
from ..engines import get_engine
from ..exceptions import InvalidJob
from ..models import Attempt, Job, Queue
from ..quarantine import decode_claimed
from ..states import TRANSITIONS, Status
from ..values import ClaimedJob, Finished
from .maintenance import quarantine_job
from .outcomes import attempt_row
from .workers import lease_duration


def _queue_names_by_id() -> dict[int, str]:
    return dict(Queue.objects.values_list("id", "name"))


def claim(
    worker_id: str,
    queue_names: Sequence[str] | None,
    limit: int,
    raw: bool = False,
    lease: timedelta | None = None,
) -> list[ClaimedJob]:
    """Claim up to ``limit`` due jobs, highest priority then oldest first, in one statement.

    Jobs of paused queues are skipped. ``queue_names`` None means every queue. Python
    task jobs and ``raw`` protocol jobs are claimed apart: ``raw`` says which. TCP
    clients cannot heartbeat, so they ask for a ``lease`` long enough to do the work.
    """
    if limit < 1:
        return []
    engine = get_engine()
    now = timezone.now()
    if not engine.has_due_jobs(queue_names, now, raw):
        return []
    claim_rows = partial(engine.claim, worker_id=worker_id, queue_names=queue_names, limit=limit, raw=raw)
    lease = lease or lease_duration()
    limits = flow_control.ClaimLimits.load(queue_names)
    if not limits.active:
        rows = claim_rows(now=now, lease_until=now + lease)
    else:
        # Queue concurrency, rate limits and circuit breakers hold across workers
        # because budgets are worked out and spent in the claim's own transaction.
        with transaction.atomic():
            now = limits.plan()
            rows = claim_rows(now=now, lease_until=now + lease, limits=limits)
            limits.spend(rows, now, queue_column=8, task_column=1)
    names = limits.names
    jobs = []
    # RETURNING has no order: hand jobs out in the claim's own order (run_after is ISO
    # text in UTC, which sorts as the times do).
    for row in sorted(map(ClaimRow._make, rows), key=lambda row: (-row.priority, row.run_after, row.id)):
        args, kwargs, unreadable = decode_claimed(row.args, row.kwargs, row.run_after)
        queue_name = names.get(row.queue_id, "?")
        if unreadable:  # never run a job nothing can read: it dies with the reason
            quarantine_job(row.id, Status.RUNNING, row.attempt, row.task_path, queue_name, unreadable)
            continue
        jobs.append(
            ClaimedJob(
                id=row.id,
                task_path=row.task_path,
                args=args,
                kwargs=kwargs,
                attempt=row.attempt,
                attempt_offset=row.attempt_offset,
                max_attempts=row.max_attempts,
                timeout=row.timeout,
                queue_name=queue_name,
                has_callback=bool(row.has_callback),
                size=_size(row.args) + _size(row.kwargs),
            )
        )
    return jobs


class ClaimRow(NamedTuple):
    """A row of the claim statement (``engines.base.CLAIM_UPDATE``), as it comes back."""

    id: int
    task_path: str
    args: Any  # JSON text on SQLite and PostgreSQL alike
    kwargs: Any
    attempt: int
    attempt_offset: int
    max_attempts: int
    timeout: int
    queue_id: int
    has_callback: Any
    priority: int
    run_after: str  # as text: a time Python cannot read must not break the claim


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes)) else len(json.dumps(value))


def renew_leases(worker_id: str, running: dict[int, int]) -> set[int]:
    """Renew the leases of the jobs a worker runs ({job id: attempt}).

    Returns the ids it still holds: a job missing from the answer was cancelled or
    recovered elsewhere, and the worker must stop running it.
    """
    if not running:
        return set()
    held = Job.objects.filter(id__in=running, status=Status.RUNNING, worker_id=worker_id)
    held.update(lease_expires_at=timezone.now() + lease_duration())
    return {
        job_id for job_id, attempts in held.values_list("id", "attempts") if running.get(job_id) == attempts
    }


def release(worker_id: str, job_ids: Iterable[int]) -> int:
    """Give jobs that never started here back to the queue on shutdown; their claim is not counted."""
    now = timezone.now()
    return Job.objects.filter(
        id__in=list(job_ids), status__in=TRANSITIONS["release"], worker_id=worker_id
    ).update(
        status=Status.QUEUED,
        attempts=F("attempts") - 1,
        started_at=None,
        lease_expires_at=None,
        updated_at=now,
    )


def requeue_cut(worker_id: str, cut: Sequence[Finished]) -> set[int]:
    """Give jobs whose running attempt a shutdown stopped back to the queue at once.

    The stopped attempt stays in the history (as ``cut`` describes it), so the job's
    next run is explained by it; it is not counted against ``max_attempts`` (the
    attempt budget moves up by one). Returns the ids given back.
    """
    if not cut:
        return set()
    now = timezone.now()
    requeued: set[int] = set()
    with transaction.atomic():
        for item in cut:
            held = Job.objects.filter(
                id=item.job.id,
                status__in=TRANSITIONS["release"],
                attempts=item.job.attempt,
                worker_id=worker_id,
            )
            if held.update(
                status=Status.QUEUED,
                attempt_offset=F("attempt_offset") + 1,
                started_at=None,
                lease_expires_at=None,
                updated_at=now,
            ):
                requeued.add(item.job.id)
        Attempt.objects.bulk_create(attempt_row(worker_id, f) for f in cut if f.job.id in requeued)
    return requeued


def report_progress(job_id: int, attempt: int, percent: int, message: str = "") -> bool:
    """Store a running attempt's progress; False if that attempt no longer runs."""
    if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 <= percent <= 100:
        raise InvalidJob(f"Progress must be a number from 0 to 100, not {percent!r}.", "progress")
    return bool(
        Job.objects.filter(id=job_id, status=Status.RUNNING, attempts=attempt).update(
            progress=int(percent), progress_message=str(message)[:255], updated_at=timezone.now()
        )
    )
