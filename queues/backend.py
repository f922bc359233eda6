"""Taskweb as a Django Tasks backend: ``@task`` functions enqueue into the database.

TASKS = {"default": {"BACKEND": "queues.backend.QueueBackend"}}

@task(max_attempts=5, timeout=60)
def send_report(user_id): ...

send_report.using(queue_name="reports", priority=10).enqueue(42)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.utils import timezone
from django.utils.module_loading import import_string

from . import encryption, lifecycle, offload, registry, values
from .compat import (
    DEFAULT_TASK_BACKEND_ALIAS,
    BaseTaskBackend,
    InvalidTaskError,
    Task,
    TaskError,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    normalize_json,
    task_enqueued,
)
from .exceptions import InvalidJob
from .models import Job
from .states import Status
from .workflows import Signature, step

RESULT_STATUS = {
    Status.SCHEDULED: TaskResultStatus.READY,
    Status.QUEUED: TaskResultStatus.READY,
    Status.RESERVED: TaskResultStatus.READY,  # claimed by a worker, its code not started
    Status.BLOCKED: TaskResultStatus.READY,
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
    ``idempotency_key`` is set per call with ``using(idempotency_key=...)``. With
    ``encrypt=True`` its jobs' arguments, result and errors are stored encrypted
    (``queues.encryption``).
    """

    max_attempts: int | None = None
    timeout: int | None = None
    no_retry_on: tuple[type[BaseException] | str, ...] = ()
    idempotency_key: str | None = None
    encrypt: bool = False

    def __post_init__(self) -> None:
        Task.__post_init__(self)
        registry.register(self)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the task's path and options, rebuilt by a module-level function.

        Django 6.1's ``Task.__reduce__`` hands pickle a bound classmethod. Twisted
        (imported by daphne) registers a copyreg reducer for bound methods that records
        the class of the method's ``self``: for a classmethod that is ``type``, so
        unpickling looks for ``type._reconstruct`` and fails. The backport has no
        ``__reduce__``, and pickle finds the Task, not its function, at the function's
        path. A plain function needs neither.
        """
        options = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "func"}
        return (_unpickle_task, (type(self), self.module_path, options))

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

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """This task with these arguments, as a workflow step (``queues.workflows``)."""
        return step(self, *args, **kwargs)

    def is_retryable(self, exc: BaseException) -> bool:
        kinds = tuple(import_string(k) if isinstance(k, str) else k for k in self.no_retry_on)
        return not isinstance(exc, kinds)


def _unpickle_task(kind: type[Task], path: str, options: dict[str, Any]) -> Task:
    task = import_string(path)
    if not isinstance(task, Task):
        raise ValueError(f"Expected {path!r} to point to a Task instance.")
    return kind(func=task.func, **options)


@contextmanager
def _as_invalid_task() -> Iterator[None]:
    """The lifecycle's refusals as the Tasks API's InvalidTaskError (kept as they are when
    they already are one, like UnstorableArguments, which is also a TypeError)."""
    try:
        yield
    except InvalidJob as exc:
        if isinstance(exc, InvalidTaskError):
            raise
        raise InvalidTaskError(str(exc)) from exc


class QueueBackend(BaseTaskBackend):
    task_class = QueueTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True
    declares_queues = True  # its QUEUES exist without set-up (queues.declared)

    def job_spec(self, task: Task, args: Sequence[Any], kwargs: dict[str, Any]) -> values.JobSpec:
        """The job of one call, its arguments as the database will give them back. They go
        through the Tasks API's own normalisation (its TypeError or ValueError reaches the
        caller unchanged) and the lifecycle's check that every database can store them."""
        return values.JobSpec(
            task_path=task.module_path,
            task=task,
            args=lifecycle.stored_arguments(args, "args", normalize_json),
            kwargs=lifecycle.stored_arguments(kwargs, "kwargs", normalize_json),
            queue=task.queue_name,
            priority=task.priority,
            run_after=task.run_after,
            max_attempts=getattr(task, "max_attempts", None),
            timeout=getattr(task, "timeout", None),
            idempotency_key=getattr(task, "idempotency_key", None),
            meta={"backend": self.alias} if self.alias != DEFAULT_TASK_BACKEND_ALIAS else {},
        )

    def enqueue(self, task: Task, args: Sequence[Any], kwargs: dict[str, Any]) -> TaskResult:
        """Insert the job in the caller's transaction; it exists only if that commits."""
        self.validate_task(task)
        spec = self.job_spec(task, args, kwargs)
        with _as_invalid_task():
            job, created = lifecycle.enqueue(spec)
        result = (
            self._new_result(task, job.pk, spec.args, spec.kwargs, job.enqueued_at)
            if created
            else self.to_result(job)
        )
        task_enqueued.send(type(self), task_result=result)
        return result

    def enqueue_many(
        self, task: Task, calls: Iterable[tuple[Sequence[Any], dict[str, Any]]]
    ) -> list[TaskResult]:
        self.validate_task(task)
        specs = [self.job_spec(task, args, kwargs) for args, kwargs in calls]
        now = timezone.now()
        with _as_invalid_task():
            outcome = lifecycle.enqueue_many(specs, now=now)
        return [
            self._new_result(task, job_id, spec.args, spec.kwargs, now)
            if created
            else self.get_result(str(job_id))
            for (job_id, created), spec in zip(outcome, specs, strict=True)
        ]

    def _new_result(
        self, task: Task, job_id: int, args: list[Any], kwargs: dict[str, Any], enqueued_at: datetime
    ) -> TaskResult:
        """The result of a job just created from ``task``, with the arguments as stored:
        nothing to read back, and equal to what ``get_result`` reads later."""
        return TaskResult(
            task=task,
            id=str(job_id),
            status=TaskResultStatus.READY,
            enqueued_at=enqueued_at,
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=args,
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
            return self.to_result(job)
        except InvalidJob:
            raise TaskResultDoesNotExist(result_id) from None

    def to_result(self, job: Job) -> TaskResult:
        """A TaskResult describing the job row as it is now (see the README for how
        Taskweb's statuses and retries map onto the Tasks API's).

        An encrypted job's arguments, result and tracebacks are decrypted with the keys in
        the environment; without one that opens them, PayloadKeyError says which is missing."""
        history = list(job.attempt_history.all()) if job.attempts and job.pk else []
        worker_ids = [attempt.worker_id for attempt in history]
        if job.status == Status.RUNNING:
            worker_ids.append(job.worker_id or "")
            last_attempted_at = job.started_at
        else:
            last_attempted_at = history[-1].started_at if history else None
        task = self._as_enqueued(registry.load(job.task_path), job)
        # Read back from the storage if offloaded, then opened if encrypted.
        args, kwargs = encryption.open_arguments(*offload.job_arguments(job))
        result = TaskResult(
            task=task,
            id=str(job.pk),
            status=RESULT_STATUS[Status(job.status)],
            enqueued_at=job.enqueued_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            last_attempted_at=last_attempted_at,
            args=args,
            kwargs=kwargs,
            backend=task.backend,
            errors=[
                TaskError(exception_class_path=a.error_type, traceback=encryption.opened_text(a.traceback))
                for a in history
                if a.error_type
            ],
            worker_ids=worker_ids,
        )
        if job.status == Status.SUCCEEDED:
            object.__setattr__(result, "_return_value", encryption.opened_result(offload.job_result(job)))
        return result

    def _as_enqueued(self, task: Task, job: Job) -> Task:
        """``task`` as the job's producer enqueued it: queue, priority and key from the
        columns; ``run_after``, limits and backend as the producer gave them (kept in
        ``meta``), or as the task defines them when it gave none."""
        meta = job.meta or {}
        given = meta.get("options", {})
        changes: dict[str, Any] = {
            "queue_name": job.queue.name,
            "priority": job.priority,
            "backend": meta.get("backend", self.alias),
            "run_after": datetime.fromisoformat(given["run_after"]) if "run_after" in given else None,
        }
        own = {f.name for f in dataclasses.fields(task)}
        changes.update(
            {
                name: given.get(name, getattr(task, name))
                for name in ("max_attempts", "timeout")
                if name in own
            }
        )
        if "idempotency_key" in own:
            changes["idempotency_key"] = job.idempotency_key
        return dataclasses.replace(task, **changes)
