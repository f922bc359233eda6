"""Hand-backs: held jobs going back to their queue without an outcome.

A reserved job that never started (a worker's backlog on shutdown, a lost worker's
reservations) is ``release``d: its claim is not counted. A running job stopped by a
shutdown is ``requeue_cut``: the stopped attempt stays in the history, not counted
against ``max_attempts``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from ..models import Attempt, Job
from ..states import TRANSITIONS, Status
from ..values import Finished
from .outcomes import attempt_row


def release(worker_id: str, job_ids: Iterable[int]) -> int:
    """Give reserved jobs that never started here back to the queue; their claim is not counted."""
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
                status__in=TRANSITIONS["cut"],
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
