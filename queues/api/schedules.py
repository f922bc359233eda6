"""Schedules: create, read, change, delete, run now."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from ninja import Path as PathParam
from ninja import Router
from ninja import Status as Reply  # the HTTP status; Status means a job's

from .. import bounds, cron, lifecycle, registry, scheduler
from ..exceptions import QueueConflict
from ..models import Schedule
from ..serializers import job_detail, schedule_out
from . import security
from .errors import CONFLICT, get_or_404
from .schemas import MAX_ID, JobDetailOut, ScheduleIn, ScheduleOut, SchedulePatch
from .security import requires

router = Router(tags=["schedules"])
ScheduleId = PathParam(..., ge=1, le=MAX_ID)


def _schedule(schedule_id: int) -> Schedule:
    return get_or_404(Schedule.objects.select_related("queue"), f"Schedule {schedule_id}", pk=schedule_id)


def _apply(schedule: Schedule, fields: dict[str, Any]) -> None:
    """Validate every field as an enqueue would, then plan the next run."""
    renames = {"task": "task_path"}
    for name, value in fields.items():
        if name == "queue":
            schedule.queue = lifecycle.get_queue(value)
        elif name == "priority":
            schedule.priority = bounds.parse_priority(value)
        else:
            setattr(schedule, renames.get(name, name), value)
    registry.lookup(schedule.task_path)
    next_run = cron.plan_schedule(schedule.cron, schedule.time_zone)
    if {"cron", "time_zone", "enabled"} & fields.keys() or schedule.next_run_at is None:
        schedule.next_run_at = next_run


def _save(schedule: Schedule) -> Schedule:
    try:
        with transaction.atomic():
            schedule.save()
    except IntegrityError:
        raise QueueConflict(f"A schedule named {schedule.name!r} already exists.") from None
    return schedule


@router.get("/schedules", response=list[ScheduleOut], summary="Every schedule", auth=requires("view"))
def list_schedules(request: HttpRequest) -> list[dict[str, Any]]:
    return [schedule_out(s) for s in Schedule.objects.select_related("queue")]


@router.post(
    "/schedules",
    response={201: ScheduleOut, **CONFLICT},
    summary="Create a schedule",
    auth=requires("schedule.add"),
)
def create_schedule(request: HttpRequest, payload: ScheduleIn) -> Reply:
    schedule = Schedule(name=payload.name)
    _apply(schedule, payload.model_dump(exclude={"name"}))
    return Reply(201, schedule_out(_save(schedule)))


@router.get("/schedules/{schedule_id}", response=ScheduleOut, summary="One schedule", auth=requires("view"))
def get_schedule(request: HttpRequest, schedule_id: int = ScheduleId) -> dict[str, Any]:
    return schedule_out(_schedule(schedule_id))


@router.patch(
    "/schedules/{schedule_id}",
    response=ScheduleOut,
    summary="Change a schedule",
    auth=requires("schedule.change"),
)
def update_schedule(
    request: HttpRequest, payload: SchedulePatch, schedule_id: int = ScheduleId
) -> dict[str, Any]:
    schedule = _schedule(schedule_id)
    changes = {k: v for k, v in payload.model_dump(exclude_unset=True).items() if v is not None}
    _apply(schedule, changes)
    return schedule_out(_save(schedule))


@router.delete(
    "/schedules/{schedule_id}",
    response={204: None},
    summary="Delete a schedule",
    auth=requires("schedule.delete"),
)
def delete_schedule(request: HttpRequest, schedule_id: int = ScheduleId) -> Reply:
    _schedule(schedule_id).delete()
    return Reply(204, None)


@router.post(
    "/schedules/{schedule_id}/run",
    response={201: JobDetailOut},
    summary="Enqueue a run now",
    auth=requires("schedule.run"),
)
def run_now(request: HttpRequest, schedule_id: int = ScheduleId) -> Reply:
    """Outside the timetable; the next planned run stays as it was."""
    job = scheduler.run_now(_schedule(schedule_id))
    return Reply(201, job_detail(job.pk, security.reveals(request)))
