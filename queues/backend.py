"""Taskweb as a Django Tasks backend: ``@task`` functions enqueue into the database.

TASKS = {"default": {"BACKEND": "queues.backend.QueueBackend"}}

@task(max_attempts=5, timeout=60)
def send_report(user_id): ...

send_report.using(queue_name="reports", priority=10).enqueue(42)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.module_loading import import_string

from . import broker, registry
from .compat import (
    BaseTaskBackend,
    InvalidTaskError,
    Task,
    TaskError,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_enqueued,
)
from .exceptions import InvalidJob
from .models import Job
from .states import Status

RESULT_STATUS = {
    Status.SCHEDULED: TaskResultStatus.READY,
    Status.QUEUED: TaskResultStatus.READY,
    Status.RUNNING: TaskResultStatus.RUNNING,
    Status.SUCCEEDED: TaskResultStatus.SUCCESSFUL,
    Status.DEAD: TaskResultStatus.FAILED,
    Status.CANCELLED: TaskResultStatus.FAILED,
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class QueueTask(Task):
    """A Task with Taskweb's own options.

    ``max_attempts`` and ``timeout`` (seconds) default to the queue's settings. An
    exception listed in ``no_retry_on`` (classes or dotted paths), like any
    ``queues.exceptions.NonRetryable``, sends the job to the dead letters at once.
    ``idempotency_key`` is set per call with ``using(idempotency_key=...)``.
    """

    max_attempts: int | None = None
    timeout: int | None = None
    no_retry_on: tuple[type[BaseException] | str, ...] = ()
    idempotency_key: str | None = None

    def __post_init__(self) -> None:
        Task.__post_init__(self)
        registry.register(self)

    def using(  # type: ignore[override]
        self,
        *,
        idempotency_key: str | None = None,
        max_attempts: int | None = None,
        timeout: int | None = None,
        **options: Any,
    ) -> QueueTask:
        task = Task.using(self, **options)
        changes = {
            name: value
            for name, value in {
                "idempotency_key": idempotency_key,
                "max_attempts": max_attempts,
                "timeout": timeout,
            }.items()
            if value is not None
        }
        return dataclasses.replace(task, **changes) if changes else task

    def enqueue_many(self, calls: Iterable[tuple[Sequence[Any], dict[str, Any]]]) -> list[TaskResult]:
        """Enqueue one job per (args, kwargs) pair with bulk inserts."""
        return self.get_backend().enqueue_many(self, calls)

    def is_retryable(self, exc: BaseException) -> bool:
        kinds = tuple(import_string(k) if isinstance(k, str) else k for k in self.no_retry_on)
        return not isinstance(exc, kinds)


class QueueBackend(BaseTaskBackend):
    task_class = QueueTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def _spec(self, task: Task, args: Sequence[Any], kwargs: dict[str, Any]) -> broker.JobSpec:
        return broker.JobSpec(
            task_path=task.module_path,
            task=task,
            args=args,
            kwargs=kwargs,
            queue=task.queue_name,
            priority=task.priority,
            run_after=task.run_after,
            max_attempts=getattr(task, "max_attempts", None),
            timeout=getattr(task, "timeout", None),
            idempotency_key=getattr(task, "idempotency_key", None),
        )

    def enqueue(self, task: Task, args: Sequence[Any], kwargs: dict[str, Any]) -> TaskResult:
        """Insert the job in the caller's transaction; it exists only if that commits."""
        self.validate_task(task)
        try:
            job, created = broker.enqueue(self._spec(task, args, kwargs))
        except InvalidJob as exc:
            raise InvalidTaskError(str(exc)) from exc
        result = (
            self._new_result(task, job.pk, job.args, job.kwargs, job.enqueued_at)
            if created
            else self.to_result(job, task)
        )
        task_enqueued.send(type(self), task_result=result)
        return result

    def enqueue_many(
        self, task: Task, calls: Iterable[tuple[Sequence[Any], dict[str, Any]]]
    ) -> list[TaskResult]:
        self.validate_task(task)
        calls = list(calls)
        try:
            outcome = broker.enqueue_many([self._spec(task, args, kwargs) for args, kwargs in calls])
        except InvalidJob as exc:
            raise InvalidTaskError(str(exc)) from exc
        now = timezone.now()
        return [
            self._new_result(task, job_id, args, kwargs, now) if created else self.get_result(str(job_id))
            for (job_id, created), (args, kwargs) in zip(outcome, calls, strict=True)
        ]

    def _new_result(
        self, task: Task, job_id: int, args: Sequence[Any], kwargs: dict[str, Any], enqueued_at: datetime
    ) -> TaskResult:
        """The result of a job just created from ``task``: nothing to read back."""
        return TaskResult(
            task=task,
            id=str(job_id),
            status=TaskResultStatus.READY,
            enqueued_at=enqueued_at,
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=list(args),
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )

    def get_result(self, result_id: str) -> TaskResult:
        try:
            job = Job.objects.select_related("queue").exclude(task_path=Job.RAW_TASK).get(id=int(result_id))
        except (ValueError, TypeError, Job.DoesNotExist):
            raise TaskResultDoesNotExist(result_id) from None
        try:
            task = registry.load(job.task_path)
        except InvalidJob:
            raise TaskResultDoesNotExist(result_id) from None
        return self.to_result(job, task)

    def to_result(self, job: Job, task: Task) -> TaskResult:
        """A TaskResult describing the job row as it is now."""
        history = list(job.attempt_history.all()) if job.attempts and job.pk else []
        worker_ids = [attempt.worker_id for attempt in history]
        if job.status == Status.RUNNING:
            worker_ids.append(job.worker_id or "")
        task = dataclasses.replace(
            task, queue_name=job.queue.name, priority=job.priority, run_after=job.run_after
        )
        result = TaskResult(
            task=task,
            id=str(job.pk),
            status=RESULT_STATUS[Status(job.status)],
            enqueued_at=job.enqueued_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            last_attempted_at=history[-1].finished_at if history else job.started_at,
            args=job.args,
            kwargs=job.kwargs,
            backend=self.alias,
            errors=[
                TaskError(exception_class_path=a.error_type, traceback=a.traceback)
                for a in history
                if a.error_type
            ],
            worker_ids=worker_ids,
        )
        if job.status == Status.SUCCEEDED:
            object.__setattr__(result, "_return_value", job.result)
        return result
