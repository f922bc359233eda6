"""Every change of a job's status, attempts, lease or dead letter happens here.

Each transition is a conditional UPDATE filtered by the statuses it may start
from (``states.TRANSITIONS``) and, for a running job, by the attempt number and
the worker holding it: a late or duplicate actor matches no row and changes
nothing, so it can never overwrite a newer outcome.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from . import bounds, declared, flow, registry, storable, tracing, webhooks
from .compat import Task
from .conf import conf
from .engines import get_engine
from .exceptions import (
    InvalidJob,
    JobNotFound,
    JobStateError,
    QueueConflict,
    UnknownQueue,
    UnstorableArguments,
    WorkerLost,
    error_path,
)
from .models import (
    QUEUE_NAME_VALIDATOR,
    Attempt,
    DeadLetter,
    Job,
    Queue,
    RuntimeBucket,
    Worker,
    WorkerStatus,
)
from .quarantine import decode_claimed
from .retry import backoff_seconds
from .states import TRANSITIONS, Outcome, Status

logger = logging.getLogger("queues.broker")
PRIORITY_NAMES = {"critical": 100, "high": 10, "normal": 0, "low": -10}


# --- value objects -----------------------------------------------------------------


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
    has_callback: bool = False
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


# --- enqueue -----------------------------------------------------------------------


def parse_priority(value: int | str) -> int:
    """A priority as a number in -100..100 or one of the names critical/high/normal/low."""
    if isinstance(value, str):
        name = value.strip().lower()
        if name in PRIORITY_NAMES:
            return PRIORITY_NAMES[name]
        try:
            value = int(name)
        except ValueError:
            raise InvalidJob(
                f"Priority {value!r} is neither a number in -100..100 nor one of "
                f"{', '.join(PRIORITY_NAMES)}.",
                field="priority",
            ) from None
    if isinstance(value, bool) or not isinstance(value, int) or not -100 <= value <= 100:
        raise InvalidJob(f"Priority must be a whole number in -100..100, not {value!r}.", "priority")
    return value


def stored_arguments(value: Any, what: str, normalize: Callable[[Any], Any] | None = None) -> Any:
    """``value`` as its JSON column gives it back, or a clear error: UnstorableArguments for
    what no database stores, InvalidJob for what is not JSON or nests past the limit.
    ``normalize`` (the Tasks API's, for the Python API) handles other types first, its own
    errors unchanged."""
    try:
        return storable.stored(value, normalize)
    except storable.Unstorable as exc:
        raise UnstorableArguments(f"The {what} cannot be stored: {exc}.", field=what) from exc
    except TypeError as exc:
        if normalize is not None:
            raise
        raise InvalidJob(f"The {what} are not JSON-serialisable: {exc}", field=what) from exc
    except RecursionError:
        raise UnstorableArguments(str(bounds.too_deep(what)), field=what) from None


def _json_text(value: Any, what: str) -> str:
    """``value`` as JSON text every database stores, nested at most ``bounds.MAX_DEPTH`` deep.

    The text escapes every NUL (\\u0000) and every surrogate (\\udxxx), so only a value
    whose text shows one, or that json refuses, is walked to find out what is wrong.
    """
    try:
        text = json.dumps(value, allow_nan=False)
    except ValueError:  # NaN or Infinity, named by the walk below
        text = ""
    except TypeError as exc:
        raise InvalidJob(f"The {what} are not JSON-serialisable: {exc}", field=what) from exc
    except RecursionError:
        raise bounds.too_deep(what) from None
    bounds.shallow(text, what)
    if not text or "\\u0000" in text or "\\ud" in text:
        stored_arguments(value, what)
    if not text:  # json refused what the walk allows: a reference cycle
        raise InvalidJob(f"The {what} are not JSON-serialisable (they refer to themselves).", field=what)
    return text


def _given_options(spec: JobSpec) -> dict[str, Any]:
    """The options the producer set itself, kept so that its Task can be rebuilt exactly
    (the columns hold what applies: a retry moves ``run_after``, a queue default fills in)."""
    given = {"max_attempts": spec.max_attempts, "timeout": spec.timeout}
    if spec.run_after is not None:
        given["run_after"] = spec.run_after.isoformat()
    return {name: value for name, value in given.items() if value is not None}


def _limit(value: int | None, what: str, maximum: int) -> int | None:
    return None if value is None else bounds.count(value, what, maximum)


def get_queue(name: str) -> Queue:
    """The queue called ``name``; created on first use only if the project declares it
    (queues.declared) or QUEUES_AUTO_CREATE is on."""
    if not isinstance(name, str) or not QUEUE_NAME_VALIDATOR.regex.match(name):
        raise InvalidJob(f"{name!r} is not a valid queue name: {QUEUE_NAME_VALIDATOR.message}", "queue")
    try:
        return Queue.objects.get(name=name)
    except Queue.DoesNotExist:
        if not (conf.QUEUES_AUTO_CREATE or name in declared.declared_queue_names()):
            raise UnknownQueue(name) from None
        queue, _ = Queue.objects.get_or_create(name=name)
        return queue


def _job_fields(spec: JobSpec, queue: Queue, now: datetime) -> dict[str, Any]:
    """The validated column values of a new job; args, kwargs and meta as JSON text."""
    # Options not given fall back to the task's @task(...) options, then the queue's.
    task = None
    if spec.task_path != Job.RAW_TASK:
        task = spec.task if spec.task is not None else registry.lookup(spec.task_path)
    priority = parse_priority(spec.priority)
    if not isinstance(spec.args, (list, tuple)):
        raise InvalidJob(f"args must be a list, not {type(spec.args).__name__}.", "args")
    if not isinstance(spec.kwargs, dict) or not all(isinstance(k, str) for k in spec.kwargs):
        raise InvalidJob("kwargs must be an object with string keys.", "kwargs")
    if task is None and (len(spec.args) != 1 or not isinstance(spec.args[0], str) or "\n" in spec.args[0]):
        # The TCP protocol sends the payload on one line: anything else would break it.
        raise InvalidJob('A raw job\'s args are one line of text: ["payload"].', "args")
    run_after = now if spec.run_after is None else bounds.run_after(spec.run_after, now)
    key = spec.idempotency_key
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= 255):
        raise InvalidJob("idempotency_key must be a string of 1 to 255 characters.", "idempotency_key")
    if not isinstance(spec.meta or {}, dict):
        raise InvalidJob(f"meta must be an object, not {type(spec.meta).__name__}.", "meta")
    # The request id and trace context of the caller ride along, for correlation.
    meta = tracing.enqueue_meta(spec.meta or {}, spec.task_path, queue.name)
    if options := _given_options(spec):
        meta["options"] = options
    return {
        "queue_id": queue.id,
        "task_path": spec.task_path,
        "args": _json_text(list(spec.args), "args"),
        "kwargs": _json_text(spec.kwargs, "kwargs"),
        "priority": priority,
        "status": Status.SCHEDULED if run_after > now else Status.QUEUED,
        "max_attempts": _limit(spec.max_attempts, "max_attempts", bounds.MAX_ATTEMPTS)
        or _limit(getattr(task, "max_attempts", None), "max_attempts", bounds.MAX_ATTEMPTS)
        or queue.max_attempts,
        "timeout": _limit(spec.timeout, "timeout", bounds.MAX_TIMEOUT)
        or _limit(getattr(task, "timeout", None), "timeout", bounds.MAX_TIMEOUT)
        or queue.timeout,
        "run_after": run_after,
        "idempotency_key": key,
        "enqueued_at": now,
        "updated_at": now,
        "meta": _json_text(meta, "meta"),
    }


def _existing(queue_id: int, key: str | None) -> Job | None:
    if key is None:
        return None
    return Job.objects.filter(queue_id=queue_id, idempotency_key=key).first()


def enqueue(spec: JobSpec) -> tuple[Job, bool]:
    """Insert one job (inside the caller's transaction, if any) and wake workers on commit.

    Returns the job and whether it was created: a key already held by a live job
    in the same queue gives back that job instead of a second one.
    """
    queue = get_queue(spec.queue)
    now = timezone.now()
    fields = _job_fields(spec, queue, now)
    if existing := _existing(queue.id, spec.idempotency_key):
        return existing, False
    engine = get_engine()
    (counted,) = _enqueued_counts([fields], queue.name, now)
    # One statement needs no transaction of its own, except a savepoint when a duplicate
    # key may fail it inside the caller's transaction.
    guard = not engine.insert_job_is_one_statement or (
        spec.idempotency_key is not None and transaction.get_connection().in_atomic_block
    )
    try:
        with transaction.atomic() if guard else nullcontext():
            job_id = engine.insert_job(fields, counted)
    except IntegrityError:
        if existing := _existing(queue.id, spec.idempotency_key):
            return existing, False
        raise
    job = Job(
        id=job_id, **{**fields, **{name: json.loads(fields[name]) for name in ("args", "kwargs", "meta")}}
    )
    job.queue = queue
    job._state.adding = False
    return job, True


def enqueue_many(
    specs: Sequence[JobSpec], batch_size: int = 5000, now: datetime | None = None
) -> list[tuple[int, bool]]:
    """Insert many jobs in bulk; same validation and idempotency as ``enqueue``.

    Returns (job id, created) per spec, in order; the new jobs' ``enqueued_at`` is
    ``now`` (the current time unless the caller passes the one it reports). Either
    every job is valid and the batch is written, or nothing is. Rows go in without
    model instances (COPY on PostgreSQL), because at tens of thousands of jobs the
    ORM's per-row work is the cost.
    """
    now = now or timezone.now()
    queues = {name: get_queue(name) for name in {spec.queue for spec in specs}}
    rows = [_job_fields(spec, queues[spec.queue], now) for spec in specs]
    keyed: dict[int, set[str]] = defaultdict(set)
    for row in rows:
        if row["idempotency_key"] is not None:
            keyed[row["queue_id"]].add(row["idempotency_key"])
    with transaction.atomic():
        found: dict[tuple[int, str], int] = {}
        for queue_id, keys in keyed.items():
            existing = Job.objects.filter(queue_id=queue_id, idempotency_key__in=keys)
            for key, job_id in existing.values_list("idempotency_key", "id"):
                found[(queue_id, key)] = job_id
        new: list[dict[str, Any]] = []
        slots: list[tuple[int | None, bool]] = []  # known id, or None for the next new row
        for row in rows:
            key = (row["queue_id"], row["idempotency_key"])
            if row["idempotency_key"] is not None and key in found:
                slots.append((found[key], False))
                continue
            if row["idempotency_key"] is not None:
                found[key] = -len(new) - 1  # a later duplicate in this batch gets this row's id
            new.append(row)
            slots.append((None, True))
        engine = get_engine()
        ids: list[int] = []
        for start in range(0, len(new), batch_size):
            ids += engine.insert_jobs(new[start : start + batch_size])
        engine.upsert_minute_stats(
            [
                count
                for queue in queues.values()
                for count in _enqueued_counts(
                    [row for row in new if row["queue_id"] == queue.id], queue.name, now
                )
            ]
        )
        engine.notify(list(queues))
    fresh = iter(ids)
    results = []
    for known, created in slots:
        if known is None:
            results.append((next(fresh), True))
        elif known < 0:
            results.append((ids[-known - 1], False))
        else:
            results.append((known, created))
    return results


def _enqueued_counts(rows: Iterable[dict[str, Any]], queue_name: str, now: datetime) -> list[tuple]:
    """Minute-rollup rows adding these new jobs to the enqueued counts."""
    per_task: dict[str, int] = defaultdict(int)
    for row in rows:
        per_task[row["task_path"]] += 1
    minute = now.replace(second=0, microsecond=0)
    return [(minute, queue_name, task, count, 0, 0, 0, 0, 0.0) for task, count in per_task.items()]


# --- claim, heartbeat, finish ------------------------------------------------------


def lease_duration() -> timedelta:
    return timedelta(seconds=conf.QUEUES_HEARTBEAT_INTERVAL * conf.QUEUES_LOST_AFTER_HEARTBEATS)


def _queue_names_by_id() -> dict[int, str]:
    return dict(Queue.objects.values_list("id", "name"))


def claim(
    worker_id: str,
    queue_names: Sequence[str] | None,
    limit: int,
    raw: bool = False,
    lease: timedelta | None = None,
) -> list[ClaimedJob]:
    """Claim up to ``limit`` due jobs, highest priority then oldest first, in one statement.

    Jobs of paused queues are skipped. ``queue_names`` None means every queue. Python
    task jobs and ``raw`` protocol jobs are claimed apart: ``raw`` says which. TCP
    clients cannot heartbeat, so they ask for a ``lease`` long enough to do the work.
    """
    if limit < 1:
        return []
    engine = get_engine()
    now = timezone.now()
    if not engine.has_due_jobs(queue_names, now, raw):
        return []
    claim_rows = partial(engine.claim, worker_id=worker_id, queue_names=queue_names, limit=limit, raw=raw)
    lease = lease or lease_duration()
    limits = flow.ClaimLimits.load(queue_names)
    if not limits.active:
        rows = claim_rows(now=now, lease_until=now + lease)
    else:
        # Queue concurrency, rate limits and circuit breakers hold across workers
        # because budgets are worked out and spent in the claim's own transaction.
        with transaction.atomic():
            now = limits.plan()
            rows = claim_rows(now=now, lease_until=now + lease, limits=limits)
            limits.spend(rows, now, queue_column=8, task_column=1)
    names = limits.names
    jobs = []
    # RETURNING has no order: hand jobs out in the claim's own order (run_after is ISO
    # text in UTC, which sorts as the times do).
    for row in sorted(map(ClaimRow._make, rows), key=lambda row: (-row.priority, row.run_after, row.id)):
        args, kwargs, unreadable = decode_claimed(row.args, row.kwargs, row.run_after)
        queue_name = names.get(row.queue_id, "?")
        if unreadable:  # never run a job nothing can read: it dies with the reason
            quarantine(row.id, Status.RUNNING, row.attempt, row.task_path, queue_name, unreadable)
            continue
        jobs.append(
            ClaimedJob(
                id=row.id,
                task_path=row.task_path,
                args=args,
                kwargs=kwargs,
                attempt=row.attempt,
                attempt_offset=row.attempt_offset,
                max_attempts=row.max_attempts,
                timeout=row.timeout,
                queue_name=queue_name,
                has_callback=bool(row.has_callback),
                size=_size(row.args) + _size(row.kwargs),
            )
        )
    return jobs


class ClaimRow(NamedTuple):
    """A row of the claim statement (``engines.base.CLAIM_UPDATE``), as it comes back."""

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


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes)) else len(json.dumps(value))


def register_worker(worker: Worker) -> Worker:
    now = timezone.now()
    worker.started_at = worker.last_heartbeat = now
    worker.expires_at = now + lease_duration()
    worker.status = WorkerStatus.ALIVE
    worker.save(force_insert=True)
    return worker


def heartbeat(worker_id: str, running: dict[int, int]) -> set[int]:
    """Renew the worker and the leases of its running jobs ({job id: attempt}).

    Returns the ids it still holds: a job missing from the answer was cancelled or
    recovered elsewhere, and the worker must stop running it.
    """
    now = timezone.now()
    expires = now + lease_duration()
    Worker.objects.filter(id=worker_id).update(
        last_heartbeat=now, expires_at=expires, status=WorkerStatus.ALIVE
    )
    if not running:
        return set()
    held = Job.objects.filter(id__in=running, status=Status.RUNNING, worker_id=worker_id)
    held.update(lease_expires_at=expires)
    return {
        job_id for job_id, attempts in held.values_list("id", "attempts") if running.get(job_id) == attempts
    }


def finish(worker_id: str, finished: Sequence[Finished]) -> set[int]:
    """Record a batch of finished attempts of jobs held by ``worker_id``.

    Successes are written with one statement; failures are retried with back-off or
    sent to the dead letters. Returns the ids whose outcome was recorded; the others
    were no longer held by this attempt (recovered or cancelled) and are ignored.
    """
    if not finished:
        return set()
    now = timezone.now()
    with transaction.atomic():
        applied = _succeed(worker_id, [f for f in finished if f.outcome == Outcome.SUCCEEDED], now)
        retried, dead = set(), set()
        for item in finished:
            if item.outcome != Outcome.SUCCEEDED:
                status = _fail(worker_id, item, now)
                if status is not None:
                    applied.add(item.job.id)
                    (dead if status == Status.DEAD else retried).add(item.job.id)
        recorded = [f for f in finished if f.job.id in applied]
        # The engine may already have written the attempts of successes with them.
        written = Outcome.SUCCEEDED if get_engine().succeed_writes_attempts else None
        Attempt.objects.bulk_create(_attempt(worker_id, f) for f in recorded if f.outcome != written)
        _count_finished(recorded, retried, dead, now)
        flow.record_outcomes(recorded, now)
        webhooks.enqueue_deliveries(
            [
                f.job.id
                for f in recorded
                if f.job.has_callback and (f.outcome == Outcome.SUCCEEDED or f.job.id in dead)
            ]
        )
    return applied


def _attempt(worker_id: str, f: Finished) -> Attempt:
    """The attempt-history row of one finished (or stopped) attempt."""
    return Attempt(
        job_id=f.job.id,
        number=f.job.attempt,
        worker_id=worker_id,
        started_at=f.started_at,
        finished_at=f.finished_at,
        duration=f.duration,
        outcome=f.outcome,
        error_type=f.error_type,
        error_message=f.error_message,
        traceback=f.traceback,
    )


def count_work(worker_id: str, done: int, failed: int) -> None:
    """Add finished attempts to a worker's totals (batched by the worker, with its heartbeat)."""
    if done or failed:
        Worker.objects.filter(id=worker_id).update(
            jobs_done=F("jobs_done") + done, jobs_failed=F("jobs_failed") + failed
        )


def _succeed(worker_id: str, items: Sequence[Finished], now: datetime) -> set[int]:
    if not items:
        return set()
    engine = get_engine()
    rows = [
        (
            f.job.id,
            f.job.attempt,
            f.result_json,
            engine.dt(f.started_at),
            engine.dt(f.finished_at),
            f.duration,
        )
        for f in items
    ]
    return engine.succeed(worker_id, rows, now)


def _fail(worker_id: str, item: Finished, now: datetime) -> Status | None:
    """Retry the job after a back-off, or kill it; None if the attempt was no longer held."""
    job = item.job
    retry = item.retryable and job.has_attempts_left
    status = Status.SCHEDULED if retry else Status.DEAD
    error = f"{item.error_type}: {item.error_message}" if item.error_message else item.error_type
    changes: dict[str, Any] = {
        "status": status,
        "updated_at": now,
        "lease_expires_at": None,
        "last_error": error,
    }
    if retry:
        changes["run_after"] = now + timedelta(seconds=backoff_seconds(job.attempt - job.attempt_offset))
    else:
        changes["finished_at"] = now
    updated = Job.objects.filter(
        id=job.id, status__in=TRANSITIONS["fail"], attempts=job.attempt, worker_id=worker_id
    ).update(**changes)
    if not updated:
        return None
    if not retry:
        DeadLetter.objects.create(
            job_id=job.id,
            queue_name=job.queue_name,
            task_path=job.task_path,
            reason="not retryable" if not item.retryable else "attempts exhausted",
            error_type=item.error_type,
            error_message=item.error_message,
            traceback=item.traceback,
            created_at=now,
        )
    return status


def _count_finished(recorded: Sequence[Finished], retried: set[int], dead: set[int], now: datetime) -> None:
    minute = now.replace(second=0, microsecond=0)
    counts: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0, 0, 0, 0.0])
    for item in recorded:
        row = counts[(item.job.queue_name, item.job.task_path)]
        row[0 if item.outcome == Outcome.SUCCEEDED else 1] += 1
        row[2] += item.job.id in retried
        row[3] += item.job.id in dead
        row[4] += item.duration
    get_engine().upsert_minute_stats(
        [(minute, queue, task, 0, *values) for (queue, task), values in counts.items()]
    )
    runtimes: dict[tuple[str, str, float], int] = defaultdict(int)
    for item in recorded:
        runtimes[(item.job.queue_name, item.job.task_path, RuntimeBucket.bound_for(item.duration))] += 1
    get_engine().upsert_runtime_buckets([(minute, *key, count) for key, count in runtimes.items()])


def release(worker_id: str, job_ids: Iterable[int]) -> int:
    """Give jobs that never started here back to the queue on shutdown; their claim is not counted."""
    now = timezone.now()
    return Job.objects.filter(
        id__in=list(job_ids), status__in=TRANSITIONS["release"], worker_id=worker_id
    ).update(
        status=Status.QUEUED,
        attempts=F("attempts") - 1,
        started_at=None,
        lease_expires_at=None,
        updated_at=now,
    )


def requeue_cut(worker_id: str, cut: Sequence[Finished]) -> set[int]:
    """Give jobs whose running attempt a shutdown stopped back to the queue at once.

    The stopped attempt stays in the history (as ``cut`` describes it), so the job's
    next run is explained by it; it is not counted against ``max_attempts`` (the
    attempt budget moves up by one). Returns the ids given back.
    """
    if not cut:
        return set()
    now = timezone.now()
    requeued: set[int] = set()
    with transaction.atomic():
        for item in cut:
            held = Job.objects.filter(
                id=item.job.id,
                status__in=TRANSITIONS["release"],
                attempts=item.job.attempt,
                worker_id=worker_id,
            )
            if held.update(
                status=Status.QUEUED,
                attempt_offset=F("attempt_offset") + 1,
                started_at=None,
                lease_expires_at=None,
                updated_at=now,
            ):
                requeued.add(item.job.id)
        Attempt.objects.bulk_create(_attempt(worker_id, f) for f in cut if f.job.id in requeued)
    return requeued


def stop_worker(worker_id: str) -> None:
    Worker.objects.filter(id=worker_id).update(status=WorkerStatus.STOPPED, stopped_at=timezone.now())


def report_progress(job_id: int, attempt: int, percent: int, message: str = "") -> bool:
    """Store a running attempt's progress; False if that attempt no longer runs."""
    if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 <= percent <= 100:
        raise InvalidJob(f"Progress must be a number from 0 to 100, not {percent!r}.", "progress")
    return bool(
        Job.objects.filter(id=job_id, status=Status.RUNNING, attempts=attempt).update(
            progress=int(percent), progress_message=str(message)[:255], updated_at=timezone.now()
        )
    )


# --- maintenance -------------------------------------------------------------------


def recover_lost(limit: int = 500) -> int:
    """Fail, as WorkerLost, the running attempts whose worker stopped heartbeating.

    A worker whose heartbeat expired is marked lost; every job it was running, and
    any running job whose lease ran out, is retried per policy or dead-lettered.
    """
    now = timezone.now()
    silent = Worker.objects.filter(status=WorkerStatus.ALIVE, expires_at__lt=now)
    lost = []
    for worker_id, last_heartbeat in silent.values_list("id", "last_heartbeat"):
        lost.append(worker_id)
        # Guarded by its status, so that of several processes noticing, one says so.
        if silent.filter(id=worker_id).update(status=WorkerStatus.LOST):
            logger.warning("worker %s is lost: no heartbeat since %s", worker_id, last_heartbeat)
    stale = Job.objects.filter(status__in=TRANSITIONS["recover"]).filter(
        Q(lease_expires_at__lt=now) | Q(worker_id__in=lost)
    )
    names = None
    by_worker: dict[str, list[Finished]] = defaultdict(list)
    for job in stale.order_by("id")[:limit]:
        names = names or _queue_names_by_id()
        claimed = ClaimedJob(
            id=job.id,
            task_path=job.task_path,
            args=job.args,
            kwargs=job.kwargs,
            attempt=job.attempts,
            attempt_offset=job.attempt_offset,
            max_attempts=job.max_attempts,
            timeout=job.timeout,
            queue_name=names.get(job.queue_id, "?"),
            has_callback="callback_url" in job.meta,
        )
        by_worker[job.worker_id or ""].append(
            Finished(
                job=claimed,
                outcome=Outcome.LOST,
                started_at=job.started_at or now,
                finished_at=now,
                error_type=error_path(WorkerLost),
                error_message=f"worker {job.worker_id} stopped heartbeating; its lease expired",
            )
        )
    recovered = 0
    for worker_id, items in by_worker.items():
        failed = len(finish(worker_id, items))
        count_work(worker_id, done=0, failed=failed)
        recovered += failed
    if recovered:
        logger.warning("recovered %d jobs of lost workers or expired leases (WorkerLost)", recovered)
    return recovered


def promote_due(limit: int = 1000) -> int:
    """Move scheduled jobs whose time has come to queued (for what people see)."""
    now = timezone.now()
    due = Job.objects.filter(status__in=TRANSITIONS["promote"], run_after__lte=now).order_by()
    ids = list(due.values_list("id", flat=True)[:limit])
    if not ids:
        return 0
    return Job.objects.filter(id__in=ids, status=Status.SCHEDULED).update(
        status=Status.QUEUED, updated_at=now
    )


_REPAIRED: dict[str, Any] = {
    # What an unreadable value becomes: a readable time, nothing, or empty arguments.
    # (An unreadable status becomes dead, as the transition makes every status.)
    "run_after": timezone.now,
    "enqueued_at": timezone.now,
    "updated_at": timezone.now,
    "started_at": lambda: None,
    "finished_at": timezone.now,
    "lease_expires_at": lambda: None,
    "args": list,
    "kwargs": dict,
    "meta": dict,
    "result": lambda: None,
}


def describe(unreadable: dict[str, str]) -> str:
    return "; ".join(f"{column} {why}" for column, why in unreadable.items())


def quarantine(
    job_id: int, status: str, attempt: int, task_path: str, queue_name: str, unreadable: dict[str, str]
) -> bool:
    """Kill a job holding values nothing can read back, and make its row readable again.

    ``unreadable`` maps each such column to what it held (``queues.quarantine`` finds
    them). Whatever its status, the job ends dead with a dead letter (reason
    ``quarantined``, error type ``UnreadableRow``) that describes every value, since each
    is replaced: times by now (or nothing), arguments, meta and result by empty ones.
    A running attempt is stopped by its worker, as on cancel. Guarded by the status
    and attempt number the caller read: a job that moved on meanwhile is left for the
    next sweep. Returns whether the job was quarantined.
    """
    now = timezone.now()
    reason = describe(unreadable)
    changes = {column: _REPAIRED[column]() for column in unreadable if column in _REPAIRED}
    changes.update(
        status=Status.DEAD, finished_at=now, updated_at=now, lease_expires_at=None, last_error=reason
    )
    with transaction.atomic():
        # Any status may be quarantined, even a value that is none (TRANSITIONS["quarantine"]).
        if not Job.objects.filter(id=job_id, status=status, attempts=attempt).update(**changes):
            return False
        DeadLetter.objects.create(
            job_id=job_id,
            queue_name=queue_name,
            task_path=task_path,
            reason="quarantined",
            error_type="UnreadableRow",
            error_message=reason,
            created_at=now,
        )
        minute = now.replace(second=0, microsecond=0)
        get_engine().upsert_minute_stats([(minute, queue_name, task_path, 0, 0, 0, 0, 1, 0.0)])
    return True


def prune(batch_size: int | None = None) -> int:
    """Delete one bounded batch of finished jobs past their retention; returns how many."""
    batch_size = batch_size or conf.QUEUES_PRUNE_BATCH
    now = timezone.now()
    expired = Q(status=Status.DEAD, finished_at__lt=now - timedelta(days=conf.QUEUES_DEAD_RETENTION_DAYS))
    for queue_id, retention in Queue.objects.values_list("id", "retention"):
        expired |= Q(
            queue_id=queue_id,
            status__in=[Status.SUCCEEDED, Status.CANCELLED],
            finished_at__lt=now - retention,
        )
    ids = list(Job.objects.filter(expired).order_by().values_list("id", flat=True)[:batch_size])
    if ids:
        _delete_rows(ids)
    return len(ids)


def _delete_rows(ids: list[int]) -> None:
    with transaction.atomic():
        Attempt.objects.filter(job_id__in=ids).delete()
        DeadLetter.objects.filter(job_id__in=ids).delete()
        Job.objects.filter(id__in=ids).delete()


# --- operator actions --------------------------------------------------------------


def _refuse(job_id: int, action: str) -> None:
    """Explain why a guarded update matched nothing: no such job, or the wrong status."""
    status = Job.objects.filter(id=job_id).values_list("status", flat=True).first()
    if status is None:
        raise JobNotFound(job_id)
    raise JobStateError(job_id, action, status, TRANSITIONS[action])


def cancel(job_id: int) -> Job:
    """Cancel a waiting or running job; a running attempt is stopped by its worker."""
    now = timezone.now()
    with transaction.atomic():
        if not Job.objects.filter(id=job_id, status__in=TRANSITIONS["cancel"]).update(
            status=Status.CANCELLED, finished_at=now, updated_at=now, lease_expires_at=None
        ):
            _refuse(job_id, "cancel")
        webhooks.enqueue_deliveries([job_id])
    return Job.objects.get(id=job_id)


def retry(job_id: int, by: str = "") -> Job:
    """Run the job again now with a fresh attempt budget (a dead job is replayed)."""
    status = Job.objects.filter(id=job_id).values_list("status", flat=True).first()
    if status == Status.DEAD:
        return replay(job_id, by=by)
    now = timezone.now()
    if not Job.objects.filter(id=job_id, status__in=TRANSITIONS["retry"] - {Status.DEAD}).update(
        **_requeued(now)
    ):
        _refuse(job_id, "retry")
    return Job.objects.get(id=job_id)


def _requeued(now: datetime) -> dict[str, Any]:
    return {
        "status": Status.QUEUED,
        "attempt_offset": F("attempts"),
        "run_after": now,
        "finished_at": None,
        "result": None,
        "progress": 0,
        "progress_message": "",
        "updated_at": now,
    }


def replay(job_id: int, by: str = "") -> Job:
    """Put a dead job back in its queue with a fresh attempt budget."""
    if not replay_many(Job.objects.filter(id=job_id), by=by):
        _refuse(job_id, "replay")
    return Job.objects.get(id=job_id)


def replay_many(jobs: QuerySet[Job], by: str = "") -> int:
    """Replay every dead job in ``jobs``; returns how many went back to their queue."""
    now = timezone.now()
    with transaction.atomic():
        ids = list(jobs.filter(status__in=TRANSITIONS["replay"]).values_list("id", flat=True))
        if not ids:
            return 0
        count = Job.objects.filter(id__in=ids, status__in=TRANSITIONS["replay"]).update(**_requeued(now))
        DeadLetter.objects.filter(job_id__in=ids, replayed_at=None).update(replayed_at=now, replayed_by=by)
        names = set(Queue.objects.filter(jobs__id__in=ids).values_list("name", flat=True))
        get_engine().notify(sorted(names))
    return count


def delete(job_ids: Iterable[int], dead_only: bool = False) -> int:
    """Delete jobs that are not running (only dead ones, when discarding dead letters).

    Returns how many were deleted.
    """
    statuses = {Status.DEAD} if dead_only else TRANSITIONS["delete"]
    with transaction.atomic():
        ids = list(Job.objects.filter(id__in=list(job_ids), status__in=statuses).values_list("id", flat=True))
        if ids:
            _delete_rows(ids)
    return len(ids)


def delete_queue(queue_name: str, batch_size: int = 1000) -> int:
    """Delete a queue and every job in it; refused while one of its jobs is running.

    Returns how many jobs went with it. The ``default`` queue stays: the Tasks
    backend enqueues there when no queue is named.
    """
    queue = get_queue(queue_name)
    if queue.name == "default":
        raise QueueConflict("The default queue cannot be deleted; purge it instead.")
    jobs = Job.objects.filter(queue=queue)
    busy = f"Queue {queue.name!r} has running jobs; pause it and let them finish first."
    if jobs.filter(status=Status.RUNNING).exists():
        raise QueueConflict(busy)
    deleted = 0
    idle = jobs.exclude(status=Status.RUNNING).order_by()
    while ids := list(idle.values_list("id", flat=True)[:batch_size]):
        _delete_rows(ids)
        deleted += len(ids)
    with transaction.atomic():
        # A job claimed between the last batch and now keeps the queue alive.
        if jobs.exists():
            raise QueueConflict(busy)
        queue.delete()
    return deleted


def purge(queue_name: str, batch_size: int = 1000) -> int:
    """Delete every waiting job of a queue, in batches; running and finished jobs stay."""
    waiting = Job.objects.filter(queue=get_queue(queue_name), status__in=TRANSITIONS["purge"])
    deleted = 0
    while ids := list(waiting.order_by().values_list("id", flat=True)[:batch_size]):
        _delete_rows(ids)
        deleted += len(ids)
    return deleted
