"""Request bodies that ask for a job, turned into the ``JobSpec`` every door enqueues with.

A job (``POST /jobs``), a workflow step and a workflow callback all name the task,
its arguments, queue and priority the same way; one builder reads them all.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .. import values
from .schemas import CallbackIn, JobIn


def job_spec(given: JobIn | CallbackIn, **options: Any) -> values.JobSpec:
    """The task call ``given`` asks for; ``options`` are the spec's other fields."""
    return values.JobSpec(
        task_path=given.task,
        args=given.args,
        kwargs=given.kwargs,
        queue=given.queue,
        priority=given.priority,
        **options,
    )


def delayed(delay: float | None, now: datetime) -> datetime | None:
    """When a job given ``delay`` seconds is due; None (due at once) without one."""
    return None if delay is None else now + timedelta(seconds=delay)
