"""Request and response shapes of the REST API (they are the OpenAPI schema too)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Field, Schema
from pydantic import AwareDatetime, ConfigDict, model_validator

from ..states import Outcome, Status

StatusName = Literal[tuple(Status.values)]  # type: ignore[valid-type]
MAX_ID = 2**63 - 1  # ids are 64-bit: larger ones cannot exist and must not reach SQL
MAX_DELAY = 366 * 86400  # a year and a day: anything longer is a mistake, not a plan


class Strict(Schema):
    # A misspelt field must be an error, not a silently ignored option.
    model_config = ConfigDict(extra="forbid")


class JobIn(Strict):
    task: str = Field(..., min_length=1, max_length=255, description="Dotted path of a registered task.")
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    queue: str = Field("default", min_length=1, max_length=64)
    priority: int | str = Field(0, description="-100..100 or critical/high/normal/low; larger runs first.")
    delay: float | None = Field(
        None, ge=0, le=MAX_DELAY, description="Run no earlier than this many seconds from now."
    )
    run_at: AwareDatetime | None = Field(None, description="Run no earlier than this time.")
    max_attempts: int | None = Field(None, ge=1, le=1000)
    timeout: int | None = Field(None, ge=1, le=7 * 86400, description="Seconds one attempt may run.")
    idempotency_key: str | None = Field(None, min_length=1, max_length=255)
    callback_url: str | None = Field(
        None, max_length=2000, description="Receives the final outcome (signed POST)."
    )

    @model_validator(mode="after")
    def one_start_time(self) -> JobIn:
        if self.delay is not None and self.run_at is not None:
            raise ValueError("give either delay or run_at, not both")
        return self


class AttemptOut(Schema):
    number: int
    worker_id: str
    started_at: datetime | None
    finished_at: datetime
    duration: float | None
    outcome: Literal[tuple(Outcome.values)]  # type: ignore[valid-type]
    error_type: str
    error_message: str
    traceback: str


class JobOut(Schema):
    id: int
    queue: str
    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    priority: int
    status: StatusName
    attempts: int
    max_attempts: int
    timeout: int
    run_after: datetime
    idempotency_key: str | None
    result: Any = None
    progress: int
    progress_message: str
    enqueued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    worker_id: str | None
    lease_expires_at: datetime | None
    last_error: str
    callback_url: str | None


class JobDetailOut(JobOut):
    errors: list[AttemptOut] = Field(description="Every finished attempt, oldest first.")


class JobPage(Schema):
    items: list[JobOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last.")


class JobFilters(Schema):
    queue: str | None = None
    status: StatusName | None = None
    task: str | None = None
    cursor: str | None = Field(None, description="next_cursor of the previous page.")
    limit: int = Field(50, ge=1, le=500)


class QueueSettings(Strict):
    concurrency: int | None = Field(None, ge=1, le=100_000, description="Most jobs running at once.")
    rate_limit: float | None = Field(None, ge=0.001, le=1_000_000, description="Most job starts per second.")
    max_attempts: int | None = Field(None, ge=1, le=1000)
    timeout: int | None = Field(None, ge=1, le=7 * 86400)
    retention: float | None = Field(
        None, gt=0, le=3650 * 86400, description="Seconds finished jobs are kept."
    )


class QueueIn(QueueSettings):
    name: str = Field(..., min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


class QueueOut(Schema):
    name: str
    paused: bool
    concurrency: int | None
    rate_limit: float | None
    max_attempts: int
    timeout: int
    retention: float = Field(description="Seconds.")
    created_at: datetime
    counts: dict[str, int] = Field(description="Jobs by status.")


class Count(Schema):
    count: int


class DeadLetterOut(Schema):
    id: int
    job_id: int
    queue: str
    task: str
    reason: str
    error_type: str
    error_message: str
    traceback: str
    created_at: datetime
    replayed_at: datetime | None
    replayed_by: str


class DeadLetterPage(Schema):
    items: list[DeadLetterOut]
    next_cursor: str | None


class DeadLetterFilters(Schema):
    queue: str | None = None
    task: str | None = None
    error_type: str | None = None
    replayed: bool = Field(False, description="true lists dead letters already replayed.")
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=500)


class ReplayMatching(Strict):
    queue: str | None = None
    task: str | None = None
    error_type: str | None = None


class WorkerOut(Schema):
    id: str
    hostname: str
    pid: int
    queues: list[str]
    concurrency: int
    status: str
    started_at: datetime
    last_heartbeat: datetime
    stopped_at: datetime | None
    jobs_done: int
    jobs_failed: int
    running: int


class ScheduleFields(Strict):
    cron: str = Field(..., min_length=1, max_length=100, description="5 fields or @hourly/@daily/...")
    task: str = Field(..., min_length=1, max_length=255)
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    queue: str = Field("default", min_length=1, max_length=64)
    priority: int | str = 0
    enabled: bool = True
    time_zone: str = Field("UTC", min_length=1, max_length=64)


class ScheduleIn(ScheduleFields):
    name: str = Field(..., min_length=1, max_length=100)


class SchedulePatch(Strict):
    cron: str | None = Field(None, min_length=1, max_length=100)
    task: str | None = Field(None, min_length=1, max_length=255)
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    queue: str | None = Field(None, min_length=1, max_length=64)
    priority: int | str | None = None
    enabled: bool | None = None
    time_zone: str | None = Field(None, min_length=1, max_length=64)


class ScheduleOut(Schema):
    id: int
    name: str
    cron: str
    time_zone: str
    task: str
    args: list[Any]
    kwargs: dict[str, Any]
    queue: str
    priority: int
    enabled: bool
    last_run_at: datetime | None
    next_run_at: datetime | None
    last_job_id: int | None
    last_error: str


class QueueStats(Schema):
    name: str
    paused: bool
    counts: dict[str, int]


class StatsOut(Schema):
    counts: dict[str, int] = Field(description="Jobs by status, every queue.")
    queues: list[QueueStats]
    dead_letters: int = Field(description="Dead letters not replayed yet.")
    workers: dict[str, int] = Field(description="Workers by status.")
    last_minute: dict[str, int] = Field(
        description="Enqueued/succeeded/failed/retried/dead in the last 60 s."
    )
    last_hour: dict[str, int]
