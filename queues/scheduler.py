"""Cron schedules: enqueue each due run of each schedule exactly once.

The transition this module makes is *schedule due -> job enqueued*. It runs inside
every ``runworker`` on each heartbeat, but only the worker holding the
``scheduler`` lease (a row in ``queues_lease``) acts, and every run is also a
``ScheduleRun`` row unique on (schedule, due time): even two leaders during a
network split cannot enqueue the same due run twice.

Missed runs (all workers were down when one or more runs fell due) are enqueued
once, for the earliest missed due time, and the schedule then moves on to its
next due time after now: a day of downtime gives one catch-up run, not 1,440.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from . import registry
from .cron import next_due
from .exceptions import InvalidJob
from .lifecycle.enqueue import enqueue
from .models import Job, Lease, Schedule, ScheduleRun
from .values import JobSpec

logger = logging.getLogger("queues.scheduler")

LEASE_NAME = "scheduler"
BATCH = 100  # due schedules handled per tick; the rest wait for the next heartbeat


# --- leader lease ------------------------------------------------------------------


def hold_lease(holder: str, ttl: timedelta, name: str = LEASE_NAME) -> bool:
    """Take or renew the named lease for ``holder``; False while someone else holds it."""
    now = timezone.now()
    taken = Lease.objects.filter(Q(holder=holder) | Q(expires_at__lt=now), name=name).update(
        holder=holder, expires_at=now + ttl
    )
    if taken:
        return True
    if Lease.objects.filter(name=name).exists():
        return False  # held by another; checked first so followers never fail an INSERT
    try:
        with transaction.atomic():
            Lease.objects.create(name=name, holder=holder, expires_at=now + ttl)
    except IntegrityError:
        return False
    return True


def release_lease(holder: str, name: str = LEASE_NAME) -> None:
    """Give the lease up on shutdown so that another worker takes over at its next tick."""
    Lease.objects.filter(name=name, holder=holder).delete()


# --- enqueueing due runs -----------------------------------------------------------


def tick(holder: str, ttl: timedelta) -> int:
    """If ``holder`` is the leader, enqueue every due run; returns how many were enqueued."""
    if not hold_lease(holder, ttl):
        return 0
    now = timezone.now()
    due = Schedule.objects.filter(enabled=True, next_run_at__lte=now).order_by("next_run_at")[:BATCH]
    return sum(1 for schedule in due if enqueue_due(schedule, now) is not None)


def _spec(schedule: Schedule, meta: dict[str, str]) -> JobSpec:
    return JobSpec(
        task_path=schedule.task_path,
        # Stored by a door that looked it up among the registered tasks.
        task=registry.load(schedule.task_path),
        args=schedule.args,
        kwargs=schedule.kwargs,
        queue=schedule.queue.name,
        priority=schedule.priority,
        meta={"schedule": schedule.name, **meta},
    )


def enqueue_due(schedule: Schedule, now: datetime) -> Job | None:
    """Enqueue the run due at ``schedule.next_run_at`` and plan the next one.

    Returns None when that due time was already enqueued (the unique ScheduleRun
    row exists) or when the job could not be enqueued (the reason is kept in
    ``last_error`` and the schedule still moves on, so a broken one never loops).
    """
    due_at = schedule.next_run_at
    assert due_at is not None
    try:
        following = next_due(schedule.cron, schedule.time_zone, now)
    except ValidationError as exc:
        # Stored past validation (a raw update): park it with the reason, do not stop the worker.
        reason = "; ".join(message for messages in exc.message_dict.values() for message in messages)
        logger.error("schedule %s has an invalid timetable and is parked: %s", schedule.name, reason)
        Schedule.objects.filter(pk=schedule.pk).update(next_run_at=None, last_error=reason)
        return None
    job = None
    try:
        with transaction.atomic():
            run = ScheduleRun.objects.create(schedule=schedule, due_at=due_at, created_at=now)
            job, _ = enqueue(_spec(schedule, {"due_at": due_at.isoformat()}))
            run.job = job
            run.save(update_fields=["job"])
            changes = {"last_run_at": now, "last_job": job, "last_error": "", "next_run_at": following}
    except IntegrityError:
        # Another leader already enqueued this due time: only move the schedule on.
        changes = {"next_run_at": following}
    except InvalidJob as exc:
        logger.error("schedule %s could not enqueue its run due at %s: %s", schedule.name, due_at, exc)
        changes = {"last_error": str(exc), "next_run_at": following}
    Schedule.objects.filter(pk=schedule.pk, next_run_at=due_at).update(**changes)
    if job is not None:
        logger.info("schedule %s enqueued job %s (due %s)", schedule.name, job.pk, due_at.isoformat())
    return job


def run_now(schedule: Schedule) -> Job:
    """Enqueue a run of ``schedule`` at once, outside its timetable; raises InvalidJob if refused.

    The next planned run is unchanged. (For the console, API and CLI "run now".)
    """
    now = timezone.now()
    job, _ = enqueue(_spec(schedule, {"run_now": now.isoformat()}))
    Schedule.objects.filter(pk=schedule.pk).update(last_run_at=now, last_job=job, last_error="")
    schedule.last_run_at, schedule.last_job, schedule.last_error = now, job, ""
    return job
