"""Small factories for the rows tests need; real rows in the real database."""

from __future__ import annotations

from typing import Any

from queues import broker
from queues.models import Job, Queue

from . import tasks  # noqa: F401  (registers the tasks that jobs here name by path)


def make_queue(name: str = "default", **fields: Any) -> Queue:
    queue, _ = Queue.objects.update_or_create(name=name, defaults=fields)
    return queue


def make_job(task_path: str = "tests.tasks.noop", **spec: Any) -> Job:
    """Enqueue through the broker, as every real producer does."""
    queue = spec.pop("queue", "default")
    make_queue(queue)
    job, _ = broker.enqueue(broker.JobSpec(task_path=task_path, queue=queue, **spec))
    return job
