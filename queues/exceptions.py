"""Errors Taskweb raises to its callers, and the ones it records for failed attempts.

Every error type an attempt records is the dotted path of an exception class
(``error_path``), so ``TaskError.exception_class`` imports it back, whether the
task raised it or Taskweb saw the attempt end some other way.
"""

from __future__ import annotations

from .compat import InvalidTaskError


def error_path(kind: type[BaseException]) -> str:
    """The dotted path recorded for an exception class, as the Tasks API writes it."""
    return f"{kind.__module__}.{kind.__qualname__}"


class TaskwebError(Exception):
    """Base class for errors raised by Taskweb."""


class InvalidJob(TaskwebError, ValueError):
    """The job as given cannot be enqueued (bad priority, arguments, options...)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class UnstorableArguments(InvalidJob, InvalidTaskError, TypeError):
    """Arguments the Tasks API accepts but a database cannot store: NaN or Infinity, NUL
    characters, unpaired surrogates. Refused on every database, so code stays portable;
    a ``TypeError`` like the API's own refusals, and its ``InvalidTaskError``."""


class UnknownQueue(InvalidJob):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"Queue {name!r} does not exist. Create it first "
            "(taskctl queues create, the console or the API), "
            "or set QUEUES_AUTO_CREATE to create queues on first use.",
            field="queue",
        )
        self.name = name


class UnknownTask(InvalidJob):
    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"Task {path!r} {reason}.", field="task")
        self.path = path


class JobNotFound(TaskwebError, LookupError):
    def __init__(self, job_id: object) -> None:
        super().__init__(f"Job {job_id} does not exist.")
        self.job_id = job_id


class WorkflowNotFound(TaskwebError, LookupError):
    def __init__(self, workflow_id: object) -> None:
        super().__init__(f"Workflow {workflow_id} does not exist.")
        self.workflow_id = workflow_id


class JobStateError(TaskwebError):
    """The job is not in a state that allows this action (e.g. replaying a live job)."""

    def __init__(self, job_id: object, action: str, status: str, allowed: frozenset[str]) -> None:
        super().__init__(
            f"Cannot {action} job {job_id}: it is {status}; "
            f"{action} applies to {', '.join(sorted(allowed))} jobs."
        )
        self.job_id = job_id
        self.action = action
        self.status = status


class NonRetryable(Exception):
    """Raise (or subclass) this in a task to send the job to the dead letters at once."""


class InvalidQueue(TaskwebError, ValueError):
    """A queue name or setting is not valid (bad name, negative limit...)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class QueueConflict(TaskwebError):
    """The queue's current state forbids this action (it exists already, jobs are running...)."""


class AttemptFailure(Exception):
    """Why an attempt failed when the task itself raised nothing: these are recorded in
    the attempt history (and ``TaskResult.errors``) by their path, never raised."""


class WorkerLost(AttemptFailure):
    """The worker running the attempt stopped heartbeating (killed, host down), a TCP
    client kept a job past its lease, or the attempt's process was stopped for the job
    before it; the job is retried per policy."""


class WorkerShutdown(AttemptFailure):
    """The worker's shutdown grace ran out mid-attempt; the job went back to its queue
    and the attempt does not count against ``max_attempts``."""


class WorkerChildDied(AttemptFailure):
    """The child process running the attempt exited without reporting (``os._exit``, a
    crash in C code, the kernel's OOM killer)."""


class TaskImportError(AttemptFailure, ImportError):
    """The job's task path no longer imports as a task; the job dies at once."""


class ResultNotSerialisable(AttemptFailure, TypeError):
    """The task returned a value that cannot be stored as JSON; the job dies at once."""


class Nack(AttemptFailure):
    """A TCP protocol client gave the job back with ``NACK``."""
