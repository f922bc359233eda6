"""Queues, jobs, attempts, dead letters, workers, schedules and the per-minute rollup.

These are plain rows; every change of a job's status, attempts, lease or dead
letter goes through ``queues.lifecycle``.
"""

from __future__ import annotations

import bisect
import math
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from . import bounds
from .cron import next_due, validate_timing
from .exceptions import InvalidJob
from .quarantine import ReadChecked, Recovering
from .states import HELD, WAITING, Outcome, Status

QUEUE_NAME_VALIDATOR = RegexValidator(
    r"^[A-Za-z0-9_.-]{1,64}$",
    "A queue name is 1 to 64 characters of letters, digits, '_', '.' and '-'.",
)
PRIORITY_VALIDATORS = [MinValueValidator(-100), MaxValueValidator(100)]
DEFAULT_RETENTION = timedelta(days=7)


class Queue(ReadChecked):
    name = models.CharField(max_length=64, unique=True, validators=[QUEUE_NAME_VALIDATOR])
    paused = models.BooleanField(default=False)
    concurrency = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most jobs running at once across all workers."
    )
    rate_limit = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.001)],
        help_text="Most job starts per second across all workers.",
    )
    # The rate limit's token bucket, kept by the claim (queues.flow_control): starts still
    # allowed now, and when that was last worked out.
    rate_tokens = models.FloatField(null=True, blank=True, editable=False)
    rate_refilled_at = models.DateTimeField(null=True, blank=True, editable=False)
    max_attempts = models.PositiveIntegerField(default=4, validators=[MinValueValidator(1)])
    timeout = models.PositiveIntegerField(
        default=300, validators=[MinValueValidator(1)], help_text="Seconds one attempt may run."
    )
    retention = models.DurationField(default=DEFAULT_RETENTION)
    encrypt = models.BooleanField(
        default=False, help_text="Store the payloads of new jobs encrypted (queues.encryption)."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The limits every door shares (queues.bounds); model forms and lifecycle.queues call this."""
        checks = {
            "concurrency": lambda v: bounds.count(v, "concurrency", bounds.MAX_CONCURRENCY),
            "rate_limit": lambda v: bounds.number(v, "rate_limit", bounds.MIN_RATE, bounds.MAX_RATE),
            "max_attempts": lambda v: bounds.count(v, "max_attempts", bounds.MAX_ATTEMPTS),
            "timeout": lambda v: bounds.count(v, "timeout", bounds.MAX_TIMEOUT),
            "retention": lambda v: bounds.seconds(
                v.total_seconds() if isinstance(v, timedelta) else v, "retention", bounds.MAX_RETENTION, 1
            ),
        }
        errors = {}
        for name, check in checks.items():
            value = getattr(self, name)
            try:
                if value is not None:
                    check(value)
            except InvalidJob as exc:
                errors[name] = str(exc)
        if errors:
            raise ValidationError(errors)


class JobQuerySet(Recovering):
    def waiting(self) -> JobQuerySet:
        return self.filter(status__in=WAITING)

    def running(self) -> JobQuerySet:
        return self.filter(status=Status.RUNNING)

    def held(self) -> JobQuerySet:
        """Reserved or running: a worker (or a TCP client) holds them under a lease."""
        return self.filter(status__in=HELD)

    def dead(self) -> JobQuerySet:
        return self.filter(status=Status.DEAD)


class Job(ReadChecked):
    RAW_TASK = "raw"

    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="jobs")
    task_path = models.CharField(max_length=255)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    priority = models.SmallIntegerField(default=0, validators=PRIORITY_VALIDATORS)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    attempt_offset = models.PositiveIntegerField(
        default=0, help_text="Attempts used before the last replay; the budget counts from here."
    )
    max_attempts = models.PositiveIntegerField(default=4)
    timeout = models.PositiveIntegerField(default=300)
    run_after = models.DateTimeField(default=timezone.now)
    # NULL, not "", for jobs without a key: the partial unique index skips NULLs.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    result = models.JSONField(null=True, blank=True)
    progress = models.PositiveSmallIntegerField(default=0)
    progress_message = models.CharField(max_length=255, blank=True, default="")
    enqueued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)
    worker_id = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    meta = models.JSONField(
        default=dict, blank=True, help_text="Request id, trace context, callback URL and the like."
    )

    objects = JobQuerySet.as_manager()

    class Meta:
        permissions = [("view_payloads", "Can see encrypted payloads in the clear")]
        indexes = [
            # The claim reads this index in order and stops at LIMIT: an index scan over
            # queued jobs only, however many other rows the table holds. Its condition is
            # the claim's own (status = 'queued', nothing else), so the planner picks it
            # whatever the statistics say; scheduled jobs are promoted to queued first.
            models.Index(
                fields=["-priority", "run_after", "id"],
                name="job_claimable",
                condition=Q(status=Status.QUEUED),
            ),
            # Promotion reads the scheduled jobs whose time came, and nothing else.
            models.Index(
                fields=["run_after"], name="job_scheduled_due", condition=Q(status=Status.SCHEDULED)
            ),
            models.Index(
                fields=["lease_expires_at"],
                name="job_held_lease",
                condition=Q(status__in=sorted(HELD)),
            ),
            models.Index(fields=["queue", "status"], name="job_queue_status"),
            models.Index(fields=["status", "finished_at"], name="job_status_finished"),
            models.Index(fields=["task_path", "status"], name="job_task_status"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["queue", "idempotency_key"],
                name="job_idempotency_key_unique",
                condition=Q(idempotency_key__isnull=False),
            ),
            models.CheckConstraint(
                condition=Q(priority__gte=-100) & Q(priority__lte=100), name="job_priority_range"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.task_path}"

    @property
    def is_raw(self) -> bool:
        return self.task_path == self.RAW_TASK


class Attempt(ReadChecked):
    """One finished attempt of a job: who ran it, how long, and how it ended."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="attempt_history")
    number = models.PositiveIntegerField()
    worker_id = models.CharField(max_length=128, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(default=timezone.now)
    duration = models.FloatField(null=True, blank=True, help_text="Seconds.")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error_type = models.CharField(max_length=255, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["job", "number"]
        indexes = [models.Index(fields=["job", "number"], name="attempt_job_number")]

    def __str__(self) -> str:
        return f"#{self.job_id} attempt {self.number}: {self.outcome}"


class OffloadedPayload(ReadChecked):
    """An object in a storage that holds a job's arguments or result (``queues.offload``).

    The ledger of every object Taskweb stored: a row is written with its job (in the
    enqueue's transaction, or by the child before it stores a result), detached when
    the job is deleted and removed once its object is. No database constraint ties it to
    the job, so deleting jobs stays one statement; ``lifecycle.deletion`` detaches rows.
    """

    ARGUMENTS, RESULT = "arguments", "result"

    job = models.ForeignKey(
        Job, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="offloaded"
    )
    part = models.CharField(max_length=16, choices=[(ARGUMENTS, "Arguments"), (RESULT, "Result")])
    storage = models.CharField(max_length=64, help_text="The STORAGES alias holding the object.")
    name = models.CharField(max_length=255, unique=True)
    size = models.PositiveBigIntegerField(help_text="Bytes.")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.storage}:{self.name}"


class DeadLetter(ReadChecked):
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="dead_letters")
    queue_name = models.CharField(max_length=64)
    task_path = models.CharField(max_length=255)
    reason = models.CharField(max_length=64)
    error_type = models.CharField(max_length=255, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    replayed_at = models.DateTimeField(null=True, blank=True)
    replayed_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(
                fields=["error_type", "created_at"],
                name="deadletter_open",
                condition=Q(replayed_at=None),
            )
        ]

    def __str__(self) -> str:
        return f"#{self.job_id} {self.reason}: {self.error_type}"


class WorkerStatus(models.TextChoices):
    ALIVE = "alive", "Alive"
    STOPPED = "stopped", "Stopped"
    LOST = "lost", "Lost"


class WorkerQuerySet(Recovering):
    def alive(self) -> WorkerQuerySet:
        """Heartbeating workers: a silent one stops counting even before it is marked lost."""
        return self.filter(status=WorkerStatus.ALIVE, expires_at__gte=timezone.now())


class Worker(ReadChecked):
    id = models.CharField(max_length=128, primary_key=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    queues = models.JSONField(default=list, help_text="Queue names; empty means every queue.")
    concurrency = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=WorkerStatus.choices, default=WorkerStatus.ALIVE)
    started_at = models.DateTimeField(default=timezone.now)
    last_heartbeat = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(
        default=timezone.now, help_text="Lost if no heartbeat arrives before this time."
    )
    stopped_at = models.DateTimeField(null=True, blank=True)
    jobs_done = models.PositiveBigIntegerField(default=0)
    jobs_failed = models.PositiveBigIntegerField(default=0)

    objects = WorkerQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at"]
        indexes = [models.Index(fields=["status", "expires_at"], name="worker_status_expiry")]

    def __str__(self) -> str:
        return self.id


class Schedule(ReadChecked):
    """A recurring job: a cron expression and what to enqueue at each due time."""

    name = models.CharField(max_length=100, unique=True)
    cron = models.CharField(max_length=100)
    time_zone = models.CharField(max_length=64, default="UTC")
    task_path = models.CharField(max_length=255)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    queue = models.ForeignKey(Queue, on_delete=models.CASCADE, related_name="schedules")
    priority = models.SmallIntegerField(default=0, validators=PRIORITY_VALIDATORS)
    enabled = models.BooleanField(default=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True)
    last_job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_error = models.TextField(
        blank=True, default="", help_text="Why the last due run could not be enqueued, if it could not."
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["next_run_at"], name="schedule_due", condition=Q(enabled=True))]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Refuse a bad cron expression or time zone; plan the next run when the timing changes."""
        validate_timing(self.cron, self.time_zone)
        loaded = getattr(self, "_timing", None)
        # A new timetable, or a schedule switched back on, starts from now: no
        # catch-up run for the time it was off.
        switched_on = self.enabled and loaded is not None and not loaded[2]
        retimed = loaded is None or loaded[:2] != (self.cron, self.time_zone)
        if self.next_run_at is None or switched_on or retimed:
            self.next_run_at = next_due(self.cron, self.time_zone, timezone.now())
            if "update_fields" in kwargs and kwargs["update_fields"] is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "next_run_at"}
        super().save(*args, **kwargs)
        self._timing = (self.cron, self.time_zone, self.enabled)

    @classmethod
    def from_db(cls, db: str | None, field_names: Any, values: Any, **kwargs: Any) -> Schedule:
        # Django 6.1 passes fetch_mode; 5.2 passes nothing more.
        instance = super().from_db(db, field_names, values, **kwargs)
        instance._timing = (instance.cron, instance.time_zone, instance.enabled)
        return instance

    def clean(self) -> None:
        validate_timing(self.cron, self.time_zone)


class ScheduleRun(ReadChecked):
    """One enqueue of a schedule; unique per due time so that it happens once."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="runs")
    due_at = models.DateTimeField()
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["schedule", "due_at"], name="schedulerun_once_per_due_time")
        ]

    def __str__(self) -> str:
        return f"{self.schedule_id} at {self.due_at:%Y-%m-%d %H:%M}"


class Lease(ReadChecked):
    """A named, expiring lock in the database, e.g. for the one scheduler leader."""

    name = models.CharField(max_length=64, primary_key=True)
    holder = models.CharField(max_length=128)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder}"


class CircuitState(models.TextChoices):
    CLOSED = "closed", "Closed"  # jobs of the task run normally
    OPEN = "open", "Open"  # too many failures: not claimed until retry_at
    HALF_OPEN = "half_open", "Half-open"  # one probe job is running; its outcome decides


class Circuit(ReadChecked):
    """The circuit breaker of one task: recent outcomes and whether workers may claim it."""

    task_path = models.CharField(max_length=255, primary_key=True)
    state = models.CharField(max_length=16, choices=CircuitState.choices, default=CircuitState.CLOSED)
    window_started_at = models.DateTimeField(default=timezone.now)
    calls = models.PositiveIntegerField(default=0, help_text="Finished attempts in the current window.")
    failures = models.PositiveIntegerField(default=0)
    opened_at = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Open: when a probe may run. Half-open: when a lost probe is tried again.",
    )
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["task_path"]
        indexes = [models.Index(fields=["state"], name="circuit_not_closed", condition=~Q(state="closed"))]

    def __str__(self) -> str:
        return f"{self.task_path}: {self.state}"


class MinuteStat(ReadChecked):
    """Per-minute counts by queue and task, written by workers as jobs finish.

    The console chart and the metrics endpoint read these instead of scanning jobs.
    """

    minute = models.DateTimeField()
    queue_name = models.CharField(max_length=64)
    task_path = models.CharField(max_length=255)
    enqueued = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    retried = models.PositiveIntegerField(default=0)
    dead = models.PositiveIntegerField(default=0)
    runtime_sum = models.FloatField(default=0.0, help_text="Seconds spent in finished attempts.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "queue_name", "task_path"], name="minutestat_unique_key"
            )
        ]
        indexes = [models.Index(fields=["queue_name", "minute"], name="minutestat_queue_minute")]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.queue_name} {self.task_path}"


class RuntimeBucket(ReadChecked):
    """Per-minute run-time histogram by queue and task, beside MinuteStat.

    ``count`` is the number of finished attempts whose duration fell in
    (previous bound, ``le``]; the metrics endpoint adds them up into Prometheus's
    cumulative buckets. ``le`` is infinity for the last bucket.
    """

    minute = models.DateTimeField()
    queue_name = models.CharField(max_length=64)
    task_path = models.CharField(max_length=255)
    le = models.FloatField()
    count = models.PositiveIntegerField(default=0)

    # Seconds, from 5 ms to 30 min; the last bucket takes everything longer.
    BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
    BOUNDS += (math.inf,)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "queue_name", "task_path", "le"], name="runtimebucket_unique_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.queue_name} {self.task_path} le={self.le}: {self.count}"

    @classmethod
    def bound_for(cls, seconds: float) -> float:
        """The upper bound of the bucket a run of ``seconds`` falls in."""
        return cls.BOUNDS[bisect.bisect_left(cls.BOUNDS, seconds)]


class TokenScope(models.TextChoices):
    """How far a token may act, at most; its owner's permissions cap it (see queues.rules).

    Ordered: each scope can do everything the one before it can."""

    READ = "read", "Read"
    OPERATE = "operate", "Operate"
    ADMIN = "admin", "Admin"

    @property
    def rank(self) -> int:
        return list(TokenScope).index(self)


class ApiToken(ReadChecked):
    """A REST API / TCP token. Only a hash is stored; the token is shown once at creation.

    A token acts for its owner: it can never do what the owner (an active staff user)
    may not do right now, and its scope may narrow that further."""

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, help_text="Public part, to find the token.")
    key_hash = models.CharField(max_length=128, help_text="SHA-256 of the secret part.")
    user = models.ForeignKey(
        "auth.User",
        on_delete=models.CASCADE,
        related_name="api_tokens",
        verbose_name="owner",
        help_text="The token acts with this user's permissions, never more.",
    )
    scope = models.CharField(
        max_length=8,
        choices=TokenScope.choices,
        default=TokenScope.READ,
        help_text="read: only read; operate: also enqueue, cancel, retry, replay, pause, resume; "
        "admin: also change, purge and delete queues and manage schedules.",
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"


class WorkflowStatus(models.TextChoices):
    """Where a workflow stands, read from its counters (see ``Workflow.status``)."""

    RUNNING = "running", "Running"  # some step has not finished
    SUCCEEDED = "succeeded", "Succeeded"  # every step succeeded
    FAILED = "failed", "Failed"  # every step finished, and one died or was cancelled
    CANCELLED = "cancelled", "Cancelled"  # an operator cancelled the whole workflow


class Workflow(ReadChecked):
    """Jobs enqueued together with dependencies between them, and the batch they form.

    The counters move in the same transaction as each step's status (``queues.lifecycle``),
    so ``succeeded + dead + cancelled == total`` exactly when every step has finished. Each
    callback is a job enqueued once: the guarded UPDATE that stamps its ``*_fired_at``
    is won by one transaction only, however many workers finish the last steps together.
    """

    CALLBACKS = ("on_success", "on_complete", "on_death")

    name = models.CharField(max_length=200, blank=True, default="")
    total = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    dead = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)
    # Each callback as {"task_path", "args", "kwargs", "queue", "priority"}; it is called
    # with the workflow's id first, then its own arguments.
    callbacks = models.JSONField(default=dict, blank=True)
    on_success_fired_at = models.DateTimeField(null=True, blank=True)
    on_complete_fired_at = models.DateTimeField(null=True, blank=True)
    on_death_fired_at = models.DateTimeField(null=True, blank=True)
    callback_jobs = models.JSONField(default=dict, blank=True, help_text="Callback name -> job id.")
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["finished_at"], name="workflow_finished")]

    def __str__(self) -> str:
        return f"workflow {self.pk} {self.name}".rstrip()

    @property
    def done(self) -> int:
        return self.succeeded + self.dead + self.cancelled

    @property
    def failed(self) -> int:
        return self.dead + self.cancelled

    @property
    def status(self) -> WorkflowStatus:
        if self.done < self.total:
            return WorkflowStatus.RUNNING
        if self.succeeded == self.total:
            return WorkflowStatus.SUCCEEDED
        return WorkflowStatus.CANCELLED if self.cancelled_at else WorkflowStatus.FAILED

    @property
    def percent(self) -> int:
        return 100 if not self.total else self.done * 100 // self.total


class WorkflowStep(ReadChecked):
    """A job's place in its workflow: its step name and how its dependencies feed it."""

    job = models.OneToOneField(Job, primary_key=True, on_delete=models.CASCADE, related_name="step")
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=200)
    pass_result = models.BooleanField(
        default=False, help_text="Prepend its dependencies' results to its arguments when it is released."
    )
    run_anyway = models.BooleanField(
        default=False, help_text="Run once every dependency has finished, even if one died."
    )
    # Dependencies not finished yet: a step is looked at closely only when this reaches 0
    # (or a dependency fails), so a step after 10,000 others costs O(1) per finished one.
    pending = models.IntegerField(default=0)

    class Meta:
        ordering = ["job"]
        constraints = [models.UniqueConstraint(fields=["workflow", "name"], name="workflowstep_unique_name")]

    def __str__(self) -> str:
        return f"{self.workflow_id}:{self.name}"


class JobDependency(ReadChecked):
    """``job`` runs only after ``depends_on``; ``position`` orders the results it is passed."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="dependencies")
    depends_on = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="dependents")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job", "depends_on"], name="jobdependency_unique")]
        indexes = [models.Index(fields=["depends_on"], name="jobdependency_depends_on")]

    def __str__(self) -> str:
        return f"{self.job_id} after {self.depends_on_id}"
