"""Errors Taskweb raises to its callers; each message names what was wrong."""

from __future__ import annotations


class TaskwebError(Exception):
    """Base class for errors raised by Taskweb."""


class InvalidJob(TaskwebError, ValueError):
    """The job as given cannot be enqueued (bad priority, arguments, options...)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


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
