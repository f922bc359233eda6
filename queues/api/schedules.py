"""Schedules: create, read, change, delete, run now."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from ninja import Status as Reply  # the HTTP status; Status means a job's

from .. import bounds, cron, lifecycle, registry, scheduler
from ..exceptions import QueueConflict
from ..models import Schedule
from ..serializers import schedule_out
from .errors import get_or_404
from .routes import Routes, RowId, job_answer
from .schemas import JobDetailOut, ScheduleIn, ScheduleOut, SchedulePatch

router = Routes("/schedules", tags=["schedules"])


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


@router.read("", list[ScheduleOut], "Every schedule")
def list_schedules(request: HttpRequest) -> list[dict[str, Any]]:
    return [schedule_out(s) for s in Schedule.objects.select_related("queue")]


@router.action("", {201: ScheduleOut}, "Create a schedule", "schedule.add", conflict=True)
def create_schedule(request: HttpRequest, payload: ScheduleIn) -> Reply:
    schedule = Schedule(name=payload.name)
    _apply(schedule, payload.model_dump(exclude={"name"}))
    return Reply(201, schedule_out(_save(schedule)))


@router.read("/{schedule_id}", ScheduleOut, "One schedule")
def get_schedule(request: HttpRequest, schedule_id: int = RowId) -> dict[str, Any]:
    return schedule_out(_schedule(schedule_id))


@router.action("/{schedule_id}", ScheduleOut, "Change a schedule", "schedule.change", method="PATCH")
def update_schedule(request: HttpRequest, payload: SchedulePatch, schedule_id: int = RowId) -> dict[str, Any]:
    schedule = _schedule(schedule_id)
    changes = {k: v for k, v in payload.model_dump(exclude_unset=True).items() if v is not None}
    _apply(schedule, changes)
    return schedule_out(_save(schedule))


@router.action("/{schedule_id}", {204: None}, "Delete a schedule", "schedule.delete", method="DELETE")
def delete_schedule(request: HttpRequest, schedule_id: int = RowId) -> Reply:
    _schedule(schedule_id).delete()
    return Reply(204, None)


@router.action("/{schedule_id}/run", {201: JobDetailOut}, "Enqueue a run now", "schedule.run")
def run_now(request: HttpRequest, schedule_id: int = RowId) -> Reply:
    """Outside the timetable; the next planned run stays as it was."""
    job = scheduler.run_now(_schedule(schedule_id))
    return Reply(201, job_answer(request, job.pk))
