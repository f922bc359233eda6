"""What a worker (or a TCP client) holds: claims, starts, lease renewals, progress and hand-backs.

A claim reserves queued jobs in one statement and leases them to the claimer; a worker
marks each one running when it hands it to an idle child (``start``), renews the
leases while it holds them, and gives back those it never started (``release``) or
whose attempt a shutdown stopped (``requeue_cut``). A lease that runs out is
recovered by ``maintenance.recover_lost``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from .. import flow_control
from ..engines import get_engine
from ..engines.rows import ClaimQuery
from ..exceptions import InvalidJob
from ..models import Job, Queue
from ..quarantine import decode_claimed
from ..states import TRANSITIONS, Status
from ..values import ClaimedJob
from .maintenance import promote_when_due, quarantine_job
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
    """Reserve up to ``limit`` queued jobs, highest priority then oldest first, in one statement.

    Jobs of paused queues are skipped. ``queue_names`` None means every queue. Python
    task jobs and ``raw`` protocol jobs are claimed apart: ``raw`` says which. A worker's
    jobs are ``reserved`` until it ``start``s them; a TCP client's are running at once
    (they start on receipt). TCP clients cannot heartbeat, so they ask for a ``lease``
    long enough to do the work.
    """
    if limit < 1:
        return []
    engine = get_engine()
    promote_when_due()  # the claim reads queued jobs only: scheduled ones whose time came first
    now = timezone.now()
    if not engine.has_due_jobs(queue_names, now, raw):
        return []
    lease = lease or lease_duration()
    limits = flow_control.ClaimLimits.load(queue_names)
    if not limits.active:
        rows = engine.claim(ClaimQuery(worker_id, queue_names, limit, now, now + lease, raw))
    else:
        # Queue concurrency, rate limits and circuit breakers hold across workers
        # because budgets are worked out and spent in the claim's own transaction.
        with transaction.atomic():
            now = limits.plan()
            rows = engine.claim(ClaimQuery(worker_id, queue_names, limit, now, now + lease, raw, limits))
            limits.spend([(row.queue_id, row.task_path) for row in rows], now)
    names = limits.names
    claimed_as = Status.RUNNING if raw else Status.RESERVED
    jobs = []
    # RETURNING has no order: hand jobs out in the claim's own order (run_after is ISO
    # text in UTC, which sorts as the times do).
    for row in sorted(rows, key=lambda row: (-row.priority, row.run_after, row.id)):
        args, kwargs, unreadable = decode_claimed(row.args, row.kwargs, row.run_after)
        queue_name = names.get(row.queue_id, "?")
        if unreadable:  # never run a job nothing can read: it dies with the reason
            quarantine_job(row.id, claimed_as, row.attempt, row.task_path, queue_name, unreadable)
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


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes)) else len(json.dumps(value))


def start(worker_id: str, job_ids: Sequence[int], at: datetime) -> set[int]:
    """Mark reserved jobs running from ``at``: their code starts now in an idle child.

    ``started_at``, the timeout and the attempt's duration count from here. Returns the
    ids started: a job missing from the answer was cancelled or recovered while it
    waited, or its task's circuit opened since the claim (it is still reserved: give it
    back with ``release``), and must not be run.
    """
    return get_engine().start(worker_id, job_ids, at, honour_circuits=flow_control.breaker_on())


def renew_leases(worker_id: str, running: dict[int, int]) -> set[int]:
    """Renew the leases of the jobs a worker holds, reserved or running ({job id: attempt}).

    Returns the ids it still holds: a job missing from the answer was cancelled or
    recovered elsewhere, and the worker must drop it (or stop running it).
    """
    if not running:
        return set()
    held = Job.objects.filter(id__in=running, status__in=TRANSITIONS["renew"], worker_id=worker_id)
    held.update(lease_expires_at=timezone.now() + lease_duration())
    return {
        job_id for job_id, attempts in held.values_list("id", "attempts") if running.get(job_id) == attempts
    }


def report_progress(job_id: int, attempt: int, percent: int, message: str = "") -> bool:
    """Store a running attempt's progress; False if that attempt no longer runs."""
    if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 <= percent <= 100:
        raise InvalidJob(f"Progress must be a number from 0 to 100, not {percent!r}.", "progress")
    return bool(
        Job.objects.filter(id=job_id, status=Status.RUNNING, attempts=attempt).update(
            progress=int(percent), progress_message=str(message)[:255], updated_at=timezone.now()
        )
    )
