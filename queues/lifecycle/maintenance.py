"""Cluster duties, each a transition of its own: recover the jobs of lost workers,
promote due scheduled jobs, quarantine unreadable rows, prune finished jobs.

Every ``runworker`` (and ``runbroker``) runs them on its heartbeat; each is guarded
so that several processes doing the same duty at once change each row once.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .. import bounds, quarantine
from ..conf import conf
from ..engines import get_engine
from ..exceptions import WorkerLost, error_path
from ..models import DeadLetter, Job, Queue, Schedule, Worker, WorkerStatus, Workflow
from ..states import TERMINAL, TRANSITIONS, Outcome, Status
from ..values import ClaimedJob, Finished
from . import dependencies
from .deletion import delete_job_rows
from .handback import release
from .outcomes import finish
from .workers import count_work

logger = logging.getLogger("queues.maintenance")


def recover_lost(limit: int = 500) -> int:
    """Recover the jobs held by workers that stopped heartbeating; returns how many.

    A worker whose heartbeat expired is marked lost. Every job it held, and any held
    job whose lease ran out, is recovered: a running attempt fails as WorkerLost and
    is retried per policy or dead-lettered; a reserved job never started, so it is
    released to its queue with its claim not counted.
    """
    now = timezone.now()
    silent = Worker.objects.filter(status=WorkerStatus.ALIVE, expires_at__lt=now)
    lost = []
    for worker_id, last_heartbeat in silent.values_list("id", "last_heartbeat"):
        lost.append(worker_id)
        # Guarded by its status, so that of several processes noticing, one says so.
        if silent.filter(id=worker_id).update(status=WorkerStatus.LOST):
            logger.warning("worker %s is lost: no heartbeat since %s", worker_id, last_heartbeat)
    stale = Job.objects.filter(status__in=TRANSITIONS["recover"]).filter(
        Q(lease_expires_at__lt=now) | Q(worker_id__in=lost)
    )
    names = None
    by_worker: dict[str, list[Finished]] = defaultdict(list)
    reserved: dict[str, list[int]] = defaultdict(list)
    for job in stale.order_by("id")[:limit]:
        if job.status == Status.RESERVED:
            reserved[job.worker_id or ""].append(job.id)
            continue
        names = names or dict(Queue.objects.values_list("id", "name"))
        claimed = ClaimedJob(
            id=job.id,
            task_path=job.task_path,
            args=job.args,
            kwargs=job.kwargs,
            attempt=job.attempts,
            attempt_offset=job.attempt_offset,
            max_attempts=job.max_attempts,
            timeout=job.timeout,
            queue_name=names.get(job.queue_id, "?"),
            has_callback="callback_url" in job.meta or "workflow" in job.meta,
        )
        by_worker[job.worker_id or ""].append(
            Finished(
                job=claimed,
                outcome=Outcome.LOST,
                started_at=job.started_at or now,
                finished_at=now,
                error_type=error_path(WorkerLost),
                error_message=f"worker {job.worker_id} stopped heartbeating; its lease expired",
            )
        )
    recovered = 0
    for worker_id, ids in reserved.items():
        recovered += release(worker_id, ids)
    for worker_id, items in by_worker.items():
        failed = len(finish(worker_id, items))
        count_work(worker_id, done=0, failed=failed)
        recovered += failed
    if recovered:
        logger.warning("recovered %d jobs of lost workers or expired leases (WorkerLost)", recovered)
    return recovered


PROMOTE_EVERY = 0.25  # seconds between promotions by one process, at most
PROMOTE_BATCH = 1000
_next_promotion = 0.0


def promote_when_due() -> int:
    """Promote due scheduled jobs if this process has not done so for ``PROMOTE_EVERY``.

    Claims call it first: they read queued jobs only, so a job whose delay (or retry
    back-off) ran out waits at most this long for a worker that is claiming anyway.
    """
    global _next_promotion
    now = time.monotonic()
    if now < _next_promotion:
        return 0
    promoted = promote_due()
    # A full batch may leave more due: the next claim promotes again at once.
    _next_promotion = now if promoted >= PROMOTE_BATCH else now + PROMOTE_EVERY
    return promoted


def promote_due(limit: int = PROMOTE_BATCH) -> int:
    """Move scheduled jobs whose time has come to queued (TRANSITIONS["promote"]).

    Its own cheap statement (the partial index job_scheduled_due), so that the claim
    reads queued jobs only, from one partial index in its own order.
    """
    now = timezone.now()
    due = Job.objects.filter(status__in=TRANSITIONS["promote"], run_after__lte=now).order_by()
    ids = list(due.values_list("id", flat=True)[:limit])
    if not ids:
        return 0
    return Job.objects.filter(id__in=ids, status=Status.SCHEDULED).update(
        status=Status.QUEUED, updated_at=now
    )


_REPAIRED: dict[str, Any] = {
    # What an unreadable value becomes: a readable time, nothing, or empty arguments.
    # (An unreadable status becomes dead, as the transition makes every status.)
    "run_after": timezone.now,
    "enqueued_at": timezone.now,
    "updated_at": timezone.now,
    "started_at": lambda: None,
    "finished_at": timezone.now,
    "lease_expires_at": lambda: None,
    "args": list,
    "kwargs": dict,
    "meta": dict,
    "result": lambda: None,
}


def describe(unreadable: dict[str, str]) -> str:
    return "; ".join(f"{column} {why}" for column, why in unreadable.items())


def quarantine_job(
    job_id: int, status: str, attempt: int, task_path: str, queue_name: str, unreadable: dict[str, str]
) -> bool:
    """Kill a job holding values nothing can read back, and make its row readable again.

    ``unreadable`` maps each such column to what it held (``queues.quarantine`` finds
    them). Whatever its status, the job ends dead with a dead letter (reason
    ``quarantined``, error type ``UnreadableRow``) that describes every value, since each
    is replaced: times by now (or nothing), arguments, meta and result by empty ones.
    A running attempt is stopped by its worker, as on cancel. Guarded by the status
    and attempt number the caller read: a job that moved on meanwhile is left for the
    next sweep. Returns whether the job was quarantined.
    """
    now = timezone.now()
    reason = describe(unreadable)
    changes = {column: _REPAIRED[column]() for column in unreadable if column in _REPAIRED}
    changes.update(
        status=Status.DEAD, finished_at=now, updated_at=now, lease_expires_at=None, last_error=reason
    )
    with transaction.atomic():
        # Any status may be quarantined, even a value that is none (TRANSITIONS["quarantine"]).
        if not Job.objects.filter(id=job_id, status=status, attempts=attempt).update(**changes):
            return False
        DeadLetter.objects.create(
            job_id=job_id,
            queue_name=queue_name,
            task_path=task_path,
            reason="quarantined",
            error_type="UnreadableRow",
            error_message=reason,
            created_at=now,
        )
        minute = now.replace(second=0, microsecond=0)
        get_engine().upsert_minute_stats([(minute, queue_name, task_path, 0, 0, 0, 0, 1, 0.0)])
        if status not in TERMINAL:  # a step that had finished is counted already
            dependencies.finished({job_id: Status.DEAD}, now)
    return True


def sweep_unreadable(live_only: bool = False, limit: int = quarantine.SWEEP_LIMIT) -> int:
    """Quarantine up to ``limit`` jobs holding unreadable values; returns how many.

    ``live_only`` looks at waiting and running jobs only (the worker's routine pass,
    cheap through the status index); otherwise every job is read (after a failed read).
    """
    quarantined = 0
    for row in get_engine().suspect_jobs(live_only, limit, bounds.READABLE_DEPTH):
        suspect = quarantine.Suspect.from_row(row)
        if (problems := suspect.problems()) and quarantine_job(
            suspect.id, suspect.status, suspect.attempts, suspect.task_path, suspect.queue_name, problems
        ):
            quarantined += 1
            logger.error("job %s quarantined: %s", suspect.id, describe(problems))
    return quarantined


def repair_unreadable_rows(limit: int = quarantine.SWEEP_LIMIT) -> int:
    """Make readable again, in every table but the jobs', up to ``limit`` rows per table
    holding a value nothing can read (see ``queues.quarantine``); returns how many."""
    engine = get_engine()
    now = timezone.now()
    repaired = 0
    for model in apps.get_app_config("queues").get_models():
        if model is Job:
            continue  # jobs die with a dead letter instead: sweep_unreadable
        shape = quarantine.RowShape.of(model)
        if not shape.times and not shape.json:
            continue
        by_column = {field.column: field for field in model._meta.concrete_fields}
        pk = model._meta.pk.column
        for row in engine.suspect_rows(model._meta.db_table, pk, shape.times, shape.json, limit):
            if not (problems := shape.problems(row)):
                continue
            changes = {
                by_column[column].attname: None
                if column in shape.nullable
                else (now if column in shape.times else by_column[column].get_default())
                for column in problems
            }
            if model is Schedule:
                changes.update(enabled=False, last_error=f"Switched off, unreadable: {describe(problems)}")
            repaired += model._base_manager.filter(pk=row[0]).update(**changes)
            logger.error("%s %s repaired: %s", model._meta.model_name, row[0], describe(problems))
    return repaired


def sweep_every_table() -> int:
    """Quarantine every unreadable job and repair every other unreadable row; how many.
    What a read that failed to decode runs before it reads again."""
    return sweep_unreadable() + repair_unreadable_rows()


def prune_finished(batch_size: int | None = None) -> int:
    """Delete one bounded batch of finished jobs past their retention; returns how many."""
    batch_size = batch_size or conf.QUEUES_PRUNE_BATCH
    now = timezone.now()
    expired = Q(status=Status.DEAD, finished_at__lt=now - timedelta(days=conf.QUEUES_DEAD_RETENTION_DAYS))
    for queue_id, retention in Queue.objects.values_list("id", "retention"):
        expired |= Q(
            queue_id=queue_id,
            status__in=[Status.SUCCEEDED, Status.CANCELLED],
            finished_at__lt=now - retention,
        )
    ids = list(Job.objects.filter(expired).order_by().values_list("id", flat=True)[:batch_size])
    if ids:
        # The worker's payload janitor deletes their stored objects, off the worker's loop.
        delete_job_rows(ids, objects_at_once=False)
    _prune_emptied_workflows(batch_size)
    return len(ids)


def _prune_emptied_workflows(batch_size: int) -> None:
    """A finished workflow goes once the last of its steps was pruned: nothing is left to
    show but its counters, and a steady stream of workflows would otherwise grow the table
    for good. One with a step left (kept longer by a longer retention) stays."""
    emptied = Workflow.objects.filter(finished_at__isnull=False, steps=None).order_by()
    ids = list(emptied.values_list("id", flat=True)[:batch_size])
    if ids:
        Workflow.objects.filter(id__in=ids, steps=None).delete()
