"""Queues: found by name, created, configured, paused and resumed, purged and deleted.

The REST API, the console, the admin, taskctl and the TCP protocol all call these
functions, so that a queue is validated the same way whichever door it comes through
(``Queue.clean`` holds the limits, ``queues.bounds`` their values).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from .. import bounds
from ..exceptions import InvalidQueue, QueueConflict
from ..models import Job, Queue
from ..states import HELD, TRANSITIONS
from .deletion import delete_job_rows
from .enqueue import get_queue

SETTINGS = ("concurrency", "rate_limit", "max_attempts", "timeout", "retention", "encrypt")
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


def delete_queue(queue_name: str, batch_size: int = 1000) -> int:
    """Delete a queue and every job in it; refused while a worker holds one of its jobs.

    Returns how many jobs went with it. The ``default`` queue stays: the Tasks
    backend enqueues there when no queue is named.
    """
    queue = get_queue(queue_name)
    if queue.name == "default":
        raise QueueConflict("The default queue cannot be deleted; purge it instead.")
    jobs = Job.objects.filter(queue=queue)
    busy = f"Queue {queue.name!r} has running jobs; pause it and let them finish first."
    if jobs.filter(status__in=HELD).exists():
        raise QueueConflict(busy)
    deleted = 0
    idle = jobs.exclude(status__in=HELD).order_by()
    while ids := list(idle.values_list("id", flat=True)[:batch_size]):
        delete_job_rows(ids)
        deleted += len(ids)
    with transaction.atomic():
        # A job claimed between the last batch and now keeps the queue alive.
        if jobs.exists():
            raise QueueConflict(busy)
        queue.delete()
    return deleted


def purge_queue(queue_name: str, batch_size: int = 1000) -> int:
    """Delete every waiting job of a queue, in batches; running and finished jobs stay."""
    waiting = Job.objects.filter(queue=get_queue(queue_name), status__in=TRANSITIONS["purge"])
    deleted = 0
    while ids := list(waiting.order_by().values_list("id", flat=True)[:batch_size]):
        delete_job_rows(ids)
        deleted += len(ids)
    return deleted
