"""The rows engine operations return, by name: callers never read a column by position."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar


@dataclass(frozen=True, slots=True)
class ClaimRow:
    """A job the claim statement took, as it comes back (``engines.base.CLAIM_UPDATE``)."""

    id: int
    task_path: str
    args: Any  # JSON text on SQLite and PostgreSQL alike
    kwargs: Any
    attempt: int
    attempt_offset: int
    max_attempts: int
    timeout: int
    queue_id: int
    has_callback: Any
    priority: int
    run_after: str  # as text: a time Python cannot read must not break the claim


@dataclass(frozen=True, slots=True)
class Succeeded:
    """One attempt that succeeded, as ``Engine.succeed`` records it."""

    COLUMNS: ClassVar[tuple[str, ...]] = ("id", "attempt", "result")  # of the job row's update
    HISTORY_COLUMNS: ClassVar[tuple[str, ...]] = (*COLUMNS, "started_at", "finished_at", "duration")

    id: int
    attempt: int
    result: str | None  # JSON text
    started_at: datetime
    finished_at: datetime
    duration: float
