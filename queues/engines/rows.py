"""The rows engine operations return, by name: callers never read a column by position."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ..flow_control import ClaimLimits


@dataclass(frozen=True, slots=True)
class ClaimQuery:
    """What one claim asks for: up to ``limit`` queued jobs of ``queue_names`` (None: every
    queue) for ``worker_id``, leased until ``lease_until``; ``raw`` jobs of TCP clients,
    which start at once (they run on receipt), or task jobs, reserved until their start;
    ``limits`` when queue budgets, rate limits or circuits apply."""

    worker_id: str
    queue_names: Sequence[str] | None
    limit: int
    now: datetime
    lease_until: datetime
    raw: bool = False
    limits: ClaimLimits | None = None


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
