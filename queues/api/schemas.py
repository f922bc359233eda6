"""Request and response shapes of the REST API (they are the OpenAPI schema too).

Limits come from ``queues.bounds``, the one definition every door shares. Numbers
in request bodies are strict: ``true`` is not 1 and ``"5"`` is not 5.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import (
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    StrictBool,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from .. import bounds
from ..bounds import PRIORITY_NAMES
from ..lifecycle import SETTINGS
from ..registry import DOTTED_PATH
from ..states import Outcome, Status

StatusName = Literal[tuple(Status.values)]  # type: ignore[valid-type]
MAX_ID = 2**63 - 1  # ids are 64-bit: larger ones cannot exist and must not reach SQL


def _priority(value: Any) -> Any:
    if isinstance(value, str) and value in PRIORITY_NAMES:
        return PRIORITY_NAMES[value]
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"must be a number from -100 to 100 or one of {', '.join(PRIORITY_NAMES)}")
    return value


Priority = Annotated[
    int,
    BeforeValidator(_priority),
    Field(ge=-100, le=100),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": -100, "maximum": 100},
                {"type": "string", "enum": list(PRIORITY_NAMES)},
            ]
        }
    ),
]
"""-100..100 or a name; one field (not a union), so an error names just ``priority``."""
QUEUE_NAME = r"^[A-Za-z0-9_.-]+$"
QueueFilter = Annotated[str, Field(max_length=64, pattern=r"^[A-Za-z0-9_.-]*$")]
"""A queue name, or empty for every queue (``queues.filters``)."""
TASK_PATH = f"^{DOTTED_PATH.pattern}$"
Text = Annotated[str, Field(max_length=255, pattern=r"^[^\x00]*$")]
"""A filter's text: no database stores NUL characters, so none can match."""
Cursor = Annotated[str, Field(pattern=r"^[0-9]{1,18}$", description="next_cursor of the previous page.")]


class Strict(Schema):
    # A misspelt field must be an error, not a silently ignored option.
    model_config = ConfigDict(extra="forbid")


def json_number(cls: type, value: Any) -> Any:
    """Numbers as JSON has them: 5 and 5.0 are the whole number 5 (as JSON Schema's
    "integer" says), but true is not 1 and "5" is not 5, which a lax int would take."""
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"must be a JSON number, not {value!r}")
    return value


class FieldError(Schema):
    field: str = Field(
        description="Dotted path of the field, e.g. priority or args.0; body for the whole body."
    )
    message: str


class ErrorOut(Schema):
    """Every error answer: a sentence, and for a 400 what was wrong with each field."""

    detail: str
    errors: list[FieldError] | None = Field(None, description="400 only: one entry per bad field.")


class JobIn(Strict):
    task: str = Field(..., max_length=255, pattern=TASK_PATH, description="Dotted path of a registered task.")
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    queue: str = Field("default", min_length=1, max_length=64, pattern=QUEUE_NAME)
    priority: Priority = Field(0, description="-100..100 or critical/high/normal/low; larger runs first.")
    delay: float | None = Field(
        None, ge=0, le=bounds.MAX_DELAY, description="Run no earlier than this many seconds from now."
    )
    run_at: AwareDatetime | None = Field(
        None,
        description=f"Run no earlier than this time: from {bounds.EARLIEST_RUN:%Y-%m-%d} "
        f"to {bounds.MAX_DELAY // 86400} days from now.",
    )
    max_attempts: int | None = Field(None, ge=1, le=bounds.MAX_ATTEMPTS)
    timeout: int | None = Field(None, ge=1, le=bounds.MAX_TIMEOUT, description="Seconds one attempt may run.")
    idempotency_key: str | None = Field(None, min_length=1, max_length=255)
    callback_url: str | None = Field(
        None, max_length=2000, description="Receives the final outcome (signed POST)."
    )

    _numbers = field_validator("delay", "max_attempts", "timeout", mode="before")(json_number)

    @field_validator("run_at")
    @classmethod
    def run_at_in_range(cls, value: datetime | None) -> datetime | None:
        return None if value is None else bounds.run_after(value, field="run_at")

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


ENCRYPTED_NOTE = (
    'An encrypted job\'s args, kwargs, result and error texts read "🔒 encrypted" unless the '
    "caller has the queues.view_payloads permission."
)


class StoredPayload(Schema):
    storage: str = Field(description="The STORAGES alias holding the object.")
    name: str = Field(description="The object's name in that storage.")
    size: int = Field(description="Bytes of JSON.")
    error: str | None = Field(None, description="Why the content could not be read back, if it could not.")


class Offloaded(Schema):
    arguments: StoredPayload | None
    result: StoredPayload | None


class JobOut(Schema):
    id: int
    queue: str
    task: str
    args: list[Any] | str = Field(description=ENCRYPTED_NOTE)
    kwargs: dict[str, Any] | str
    encrypted: bool = Field(description="The job's payloads are stored encrypted.")
    priority: int
    status: StatusName
    attempts: int
    max_attempts: int
    timeout: int
    run_after: datetime
    idempotency_key: str | None
    result: Any = None
    offloaded: Offloaded = Field(
        description="Where the arguments and the result are when they were too large for the row "
        "(null: in the row). A list shows them empty; a single job shows their content."
    )
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
    note: str | None = Field(
        None, description="With ?q=: how many encrypted jobs the search could not look into."
    )


class JobFilters(Schema):
    queue: QueueFilter | None = None
    status: StatusName | None = None
    task: Text | None = None
    q: Annotated[str, Field(max_length=200, pattern=r"^[^\x00]*$")] | None = Field(
        None,
        description="Search: #123 is that job; other text is found in the task path or the "
        "arguments' JSON (case-insensitive) among the newest 50,000 jobs; encrypted jobs' "
        "arguments cannot be searched (see note).",
    )
    cursor: Cursor | None = None
    limit: int = Field(50, ge=1, le=500)


class QueueSettings(Strict):
    """null clears concurrency and rate_limit (no limit) and puts the others back to their default."""

    concurrency: int | None = Field(
        None, ge=1, le=bounds.MAX_CONCURRENCY, description="Most jobs running at once."
    )
    rate_limit: float | None = Field(
        None, ge=bounds.MIN_RATE, le=bounds.MAX_RATE, description="Most job starts per second."
    )
    max_attempts: int | None = Field(None, ge=1, le=bounds.MAX_ATTEMPTS, description="Default: 4.")
    timeout: int | None = Field(None, ge=1, le=bounds.MAX_TIMEOUT, description="Seconds; default 300.")
    retention: float | None = Field(
        None, ge=1, le=bounds.MAX_RETENTION, description="Seconds finished jobs are kept; default 7 days."
    )
    encrypt: StrictBool | None = Field(
        None, description="Store the arguments, result and errors of new jobs encrypted; default false."
    )

    _numbers = field_validator(*(name for name in SETTINGS if name != "encrypt"), mode="before")(json_number)


class QueueIn(QueueSettings):
    name: str = Field(..., min_length=1, max_length=64, pattern=QUEUE_NAME)


class QueueOut(Schema):
    name: str
    paused: bool
    concurrency: int | None
    rate_limit: float | None
    max_attempts: int
    timeout: int
    retention: float = Field(description="Seconds.")
    encrypt: bool = Field(description="New jobs are stored encrypted.")
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
    queue: QueueFilter | None = None
    task: Text | None = None
    error_type: Text | None = None
    replayed: bool = Field(False, description="true lists dead letters already replayed.")
    cursor: Cursor | None = None
    limit: int = Field(50, ge=1, le=500)


class ReplayMatching(Strict):
    queue: QueueFilter | None = None
    task: Text | None = None
    error_type: Text | None = None


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
    reserved: int = Field(description="Jobs it has claimed whose code has not started yet.")
    running: int


class ScheduleFields(Strict):
    cron: str = Field(..., min_length=1, max_length=100, description="5 fields or @hourly/@daily/...")
    task: str = Field(..., max_length=255, pattern=TASK_PATH, description="Dotted path of a registered task.")
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    queue: str = Field("default", min_length=1, max_length=64, pattern=QUEUE_NAME)
    priority: Priority = 0
    enabled: StrictBool = True
    time_zone: str = Field("UTC", min_length=1, max_length=64)


class ScheduleIn(ScheduleFields):
    name: str = Field(..., min_length=1, max_length=100)


class SchedulePatch(Strict):
    cron: str | None = Field(None, min_length=1, max_length=100)
    task: str | None = Field(None, max_length=255, pattern=TASK_PATH)
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    queue: str | None = Field(None, min_length=1, max_length=64, pattern=QUEUE_NAME)
    priority: Priority | None = None
    enabled: StrictBool | None = None
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


StepName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00/]+$")]


class CallbackIn(Strict):
    task: str = Field(
        ..., max_length=255, pattern=TASK_PATH, description="Called with the workflow id first."
    )
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    queue: str = Field("default", min_length=1, max_length=64, pattern=QUEUE_NAME)
    priority: Priority = 0


class StepIn(CallbackIn):
    task: str = Field(..., max_length=255, pattern=TASK_PATH, description="Dotted path of a registered task.")
    name: StepName = Field(..., description="Unique in the workflow; other steps name it in depends_on.")
    depends_on: list[StepName] = Field(default_factory=list, description="Steps that must succeed first.")
    pass_result: StrictBool = Field(False, description="Prepend the dependencies' results to args.")
    run_anyway: StrictBool = Field(False, description="Run once the dependencies finish, even if one died.")
    max_attempts: int | None = Field(None, ge=1, le=bounds.MAX_ATTEMPTS)
    timeout: int | None = Field(None, ge=1, le=bounds.MAX_TIMEOUT, description="Seconds one attempt may run.")
    delay: float | None = Field(
        None, ge=0, le=bounds.MAX_DELAY, description="Run no earlier than this many seconds from now."
    )

    _numbers = field_validator("delay", "max_attempts", "timeout", mode="before")(json_number)


class WorkflowIn(Strict):
    name: str = Field("", max_length=200)
    steps: list[StepIn] = Field(..., min_length=1, max_length=100_000)
    on_success: CallbackIn | None = Field(None, description="Enqueued once when every step has succeeded.")
    on_complete: CallbackIn | None = Field(None, description="Enqueued once when every step has finished.")
    on_death: CallbackIn | None = Field(None, description="Enqueued once when the first step dies.")


class CallbackOut(Schema):
    task: str
    fired_at: datetime | None
    job_id: int | None


class WorkflowOut(Schema):
    id: int
    name: str
    status: Literal["running", "succeeded", "failed", "cancelled"]
    total: int
    done: int
    succeeded: int
    failed: int
    dead: int
    cancelled: int
    percent: int
    created_at: datetime
    finished_at: datetime | None
    cancelled_at: datetime | None
    callbacks: dict[str, CallbackOut]


class StepOut(Schema):
    name: str
    stage: int = Field(description="0 for steps that wait for none; else 1 + the latest stage waited for.")
    job_id: int
    task: str
    queue: str
    status: StatusName
    attempts: int
    depends_on: list[str]
    pass_result: bool
    run_anyway: bool
    last_error: str
    started_at: datetime | None
    finished_at: datetime | None


class WorkflowDetailOut(WorkflowOut):
    steps: list[StepOut]


class WorkflowPage(Schema):
    items: list[WorkflowOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last.")


class WorkflowFilters(Schema):
    status: Literal["running", "finished"] | None = None
    cursor: Cursor | None = None
    limit: int = Field(50, ge=1, le=500)
