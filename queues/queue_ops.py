"""Create queues, change their limits, pause and resume them, and count their jobs.

These touch Queue rows only; anything that deletes or moves jobs (purge, delete)
is the broker's. The REST API, the admin and taskctl all call these functions so
that a queue is validated the same way whichever door it comes through.
The dead-letter filter and the schedule check live here for the same reason.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from croniter.croniter import CroniterError
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Count, QuerySet
from django.utils import timezone

from . import bounds, scheduler
from .broker import get_queue
from .exceptions import InvalidJob, InvalidQueue, QueueConflict
from .models import DeadLetter, Job, Queue
from .states import Status

SETTINGS = ("concurrency", "rate_limit", "max_attempts", "timeout", "retention")
"""The queue fields an operator may change after creation (besides paused)."""


def _apply(queue: Queue, changes: dict[str, Any]) -> None:
    """Set ``changes`` on the queue and check them (Queue.clean holds the limits).

    None clears a limit (concurrency, rate_limit) and puts a default back (the rest).
    """
    unknown = set(changes) - set(SETTINGS)
    if unknown:
        raise InvalidQueue(f"Unknown queue setting(s): {', '.join(sorted(unknown))}.", sorted(unknown)[0])
    for name, value in changes.items():
        field = Queue._meta.get_field(name)
        if value is None and not field.null:
            value = field.get_default()
        if name == "retention" and not isinstance(value, timedelta):
            value = timedelta(seconds=bounds.seconds(value, name, bounds.MAX_RETENTION, 1))
        setattr(queue, name, value)
    try:
        queue.full_clean(validate_unique=False)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise InvalidQueue(" ".join(messages), field) from None


def create_queue(name: str, **settings: Any) -> Queue:
    queue = Queue(name=name)
    _apply(queue, settings)
    try:
        with transaction.atomic():
            queue.save(force_insert=True)
    except IntegrityError:
        raise QueueConflict(f"Queue {name!r} already exists.") from None
    return queue


def update_queue(name: str, **settings: Any) -> Queue:
    queue = get_queue(name)
    _apply(queue, settings)
    queue.save(update_fields=[*settings])
    return queue


def set_paused(name: str, paused: bool) -> Queue:
    """Pause or resume a queue: workers stop or start claiming its jobs; running ones finish."""
    queue = get_queue(name)
    Queue.objects.filter(pk=queue.pk).update(paused=paused)
    queue.paused = paused
    return queue


def status_counts(queue_ids: list[int] | None = None) -> dict[int, dict[str, int]]:
    """{queue id: {status: jobs}} with every status present, from one grouped query."""
    jobs = Job.objects.all() if queue_ids is None else Job.objects.filter(queue_id__in=queue_ids)
    counts: dict[int, dict[str, int]] = {}
    for row in jobs.values("queue_id", "status").annotate(n=Count("id")).order_by():
        counts.setdefault(row["queue_id"], dict.fromkeys(Status.values, 0))[row["status"]] = row["n"]
    return counts


def empty_counts() -> dict[str, int]:
    return dict.fromkeys(Status.values, 0)


def dead_letters_matching(
    letters: QuerySet[DeadLetter], queue: str | None, task: str | None, error_type: str | None
) -> QuerySet[DeadLetter]:
    if queue:
        letters = letters.filter(queue_name=queue)
    if task:
        letters = letters.filter(task_path=task)
    if error_type:
        letters = letters.filter(error_type=error_type)
    return letters


def plan_schedule(cron: str, time_zone: str) -> datetime:
    """The next due time of a cron expression, or InvalidJob naming the bad field.

    Checks more than the syntax: "0 0 31 2 *" parses but never comes due.
    """
    try:
        scheduler.validate_timing(cron, time_zone)
        return scheduler.next_due(cron, time_zone, timezone.now())
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise InvalidJob(" ".join(messages), field) from None
    except CroniterError:
        raise InvalidJob(f"The cron expression {cron!r} never comes due.", "cron") from None
