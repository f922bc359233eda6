"""The plain values that travel between the doors, the lifecycle and the worker.

A job to enqueue (``JobSpec``), a job a worker holds (``ClaimedJob``) and how one of
its attempts ended (``Finished``). They import nothing of Taskweb's but the statuses
and the Tasks API, so that any module may use them without an import cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .compat import Task
from .states import Outcome


@dataclass(frozen=True)
class JobSpec:
    """Everything needed to enqueue one job; validated by ``enqueue``."""

    task_path: str
    args: Sequence[Any] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue: str = "default"
    priority: int | str = 0
    run_after: datetime | None = None
    max_attempts: int | None = None
    timeout: int | None = None
    idempotency_key: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    # The Task itself, when the caller holds one (the Tasks backend, a schedule's stored
    # path): then ``task_path`` need not be registered. A path from input is looked up.
    task: Task | None = None


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job a worker has just claimed: what it needs to run it and to report back."""

    id: int
    task_path: str
    args: list[Any]
    kwargs: dict[str, Any]
    attempt: int
    attempt_offset: int
    max_attempts: int
    timeout: int
    queue_name: str
    has_callback: bool = False  # a completion webhook or a workflow waits for its outcome
    size: int = 0  # bytes of JSON arguments, to keep big jobs out of child pipes

    @property
    def has_attempts_left(self) -> bool:
        return self.attempt - self.attempt_offset < self.max_attempts


@dataclass(frozen=True, slots=True)
class Finished:
    """How one attempt ended, as the worker saw it."""

    job: ClaimedJob
    outcome: Outcome
    started_at: datetime
    finished_at: datetime
    result_json: str | None = None
    error_type: str = ""
    error_message: str = ""
    traceback: str = ""
    retryable: bool = True

    @property
    def duration(self) -> float:
        return max((self.finished_at - self.started_at).total_seconds(), 0.0)


@dataclass(frozen=True)
class StepSpec:
    """One step of a workflow to create: its job, its name, and the steps it waits for.

    ``pass_result`` prepends the dependencies' results to its arguments when it is
    released (one dependency: its result; several: the list of their results, in order);
    ``run_anyway`` runs it once every dependency has finished, even if one died.
    """

    name: str
    job: JobSpec
    depends_on: tuple[str, ...] = ()
    pass_result: bool = False
    run_anyway: bool = False
