"""What operators do to jobs, from any door: cancel, retry, replay, delete.

Each action is a guarded UPDATE from the statuses ``states.TRANSITIONS`` allows; a
job in another status is refused with a message saying which, and a running job is
never deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from .. import webhooks
from ..engines import get_engine
from ..exceptions import JobNotFound, JobStateError
from ..models import DeadLetter, Job, Queue
from ..states import TRANSITIONS, Status
from . import dependencies
from .deletion import delete_job_rows


def _refuse(job_id: int, action: str) -> None:
    """Explain why a guarded update matched nothing: no such job, or the wrong status."""
    status = Job.objects.filter(id=job_id).values_list("status", flat=True).first()
    if status is None:
        raise JobNotFound(job_id)
    raise JobStateError(job_id, action, status, TRANSITIONS[action])


def cancel(job_id: int) -> Job:
    """Cancel a waiting, blocked or running job; a running attempt is stopped by its worker.

    A workflow step's dependents are cancelled with it (unless they run anyway)."""
    now = timezone.now()
    with transaction.atomic():
        if not Job.objects.filter(id=job_id, status__in=TRANSITIONS["cancel"]).update(
            status=Status.CANCELLED, finished_at=now, updated_at=now, lease_expires_at=None
        ):
            _refuse(job_id, "cancel")
        webhooks.enqueue_deliveries([job_id])
        dependencies.finished({job_id: Status.CANCELLED}, now)
    return Job.objects.get(id=job_id)


def retry(job_id: int, by: str = "") -> Job:
    """Run the job again now with a fresh attempt budget (a dead job is replayed).

    Idle workers of its queue are woken, as for a replay: the job is due at once. A
    workflow step waits for its dependencies again if they are not all satisfied, and
    the dependents it had cancelled wait for it again.
    """
    status = Job.objects.filter(id=job_id).values_list("status", flat=True).first()
    if status == Status.DEAD:
        return replay(job_id, by=by)
    now = timezone.now()
    with transaction.atomic():
        if not Job.objects.filter(id=job_id, status__in=TRANSITIONS["retry"] - {Status.DEAD}).update(
            **_requeued(now)
        ):
            _refuse(job_id, "retry")
        dependencies.reopened({job_id: status}, now)
        job = Job.objects.select_related("queue").get(id=job_id)
        get_engine().notify([job.queue.name])
    return job


def _requeued(now: datetime) -> dict[str, Any]:
    return {
        "status": Status.QUEUED,
        "attempt_offset": F("attempts"),
        "run_after": now,
        "finished_at": None,
        "result": None,
        "progress": 0,
        "progress_message": "",
        "updated_at": now,
    }


def replay(job_id: int, by: str = "") -> Job:
    """Put a dead job back in its queue with a fresh attempt budget."""
    if not replay_many(Job.objects.filter(id=job_id), by=by):
        _refuse(job_id, "replay")
    return Job.objects.get(id=job_id)


def replay_many(jobs: QuerySet[Job], by: str = "") -> int:
    """Replay every dead job in ``jobs``; returns how many went back to their queue."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(jobs.filter(status__in=TRANSITIONS["replay"]).values_list("id", flat=True))
        if not ids:
            return 0
        count = Job.objects.filter(id__in=ids, status__in=TRANSITIONS["replay"]).update(**_requeued(now))
        DeadLetter.objects.filter(job_id__in=ids, replayed_at=None).update(replayed_at=now, replayed_by=by)
        dependencies.reopened(dict.fromkeys(ids, Status.DEAD), now)
        names = set(Queue.objects.filter(jobs__id__in=ids).values_list("name", flat=True))
        get_engine().notify(sorted(names))
    return count


def delete_jobs(job_ids: Iterable[int], dead_only: bool = False) -> int:
    """Delete jobs that are not running (only dead ones, when discarding dead letters).

    Returns how many were deleted.
    """
    statuses = {Status.DEAD} if dead_only else TRANSITIONS["delete"]
    with transaction.atomic():
        ids = list(Job.objects.filter(id__in=list(job_ids), status__in=statuses).values_list("id", flat=True))
        if ids:
            delete_job_rows(ids)
    return len(ids)
