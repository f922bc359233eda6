"""Taskweb's own tasks, run by workers like any other (found by task autodiscovery)."""

from __future__ import annotations

from . import webhooks
from .compat import TaskContext, task


@task(takes_context=True, max_attempts=webhooks.DELIVERY_ATTEMPTS, timeout=60)
def deliver_webhook(context: TaskContext, url: str, body: str) -> int:
    """POST a finished job's outcome to its callback URL (see queues.webhooks)."""
    # The delivery job id stays the same across retries: receivers can drop duplicates.
    return webhooks.deliver(url, body, context.task_result.id)
