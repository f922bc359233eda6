"""Small factories for the rows tests need; real rows in the real database."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import User
from django.utils import timezone

from queues import auth_tokens, lifecycle, values
from queues.models import Job, Queue, TokenScope

from . import tasks  # noqa: F401  (registers the tasks that jobs here name by path)


def make_queue(name: str = "default", **fields: Any) -> Queue:
    queue, _ = Queue.objects.update_or_create(name=name, defaults=fields)
    return queue


def make_job(task_path: str = "tests.tasks.noop", **spec: Any) -> Job:
    """Enqueue through the lifecycle, as every real producer does."""
    queue = spec.pop("queue", "default")
    make_queue(queue)
    job, _ = lifecycle.enqueue(values.JobSpec(task_path=task_path, queue=queue, **spec))
    return job


def start_claimed(worker_id: str, queues: Sequence[str] | None, limit: int) -> list[values.ClaimedJob]:
    """Claim jobs and start them, as a worker does when it hands each to an idle child."""
    claimed = lifecycle.claim(worker_id, queues, limit)
    started = lifecycle.start(worker_id, [job.id for job in claimed], timezone.now())
    return [job for job in claimed if job.id in started]


def make_dead_job(task_path: str = "tests.tasks.fail", queue: str = "default") -> Job:
    """A job whose one attempt failed for good, through the lifecycle; its queue holds no other job."""
    job = make_job(task_path, queue=queue)
    (claimed,) = start_claimed("factory", [queue], 1)
    now = timezone.now()
    failed = values.Finished(claimed, "failed", now, now, error_type="E", retryable=False)
    lifecycle.finish("factory", [failed])
    return job


def make_token(name: str = "tests", *, user: User | None = None, scope: str = TokenScope.ADMIN) -> str:
    """A token in plain text; it acts for ``user``, by default a superuser made for tokens."""
    if user is None:
        user, _ = User.objects.get_or_create(
            username="token-owner", defaults={"is_staff": True, "is_superuser": True}
        )
    return auth_tokens.create_token(name, user=user, scope=scope).plain
