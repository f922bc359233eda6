"""Enqueueing: one job or many, validated at once, inside the caller's transaction.

Every door that creates jobs (the Tasks backend, the REST API, the admin, taskctl,
schedules, the TCP protocol, webhooks) comes through here, so a job is checked the
same way whoever asks for it, and workers are woken when the transaction commits.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from .. import bounds, declared, encryption, offload, registry, storable, tracing
from ..conf import conf
from ..engines import Engine, get_engine
from ..exceptions import InvalidJob, UnknownQueue, UnstorableArguments
from ..models import QUEUE_NAME_VALIDATOR, Job, Queue
from ..states import Status
from ..values import JobSpec


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


def _job_fields(spec: JobSpec, queue: Queue, now: datetime) -> dict[str, Any]:
    """The validated column values of a new job; args, kwargs and meta as JSON text."""
    # Options not given fall back to the task's @task(...) options, then the queue's.
    task = None
    if spec.task_path != Job.RAW_TASK:
        task = spec.task if spec.task is not None else registry.lookup(spec.task_path)
    priority = bounds.parse_priority(spec.priority)
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
    args, kwargs = _json_text(list(spec.args), "args"), _json_text(spec.kwargs, "kwargs")
    offload.check_arguments(args, kwargs)
    fields = {
        "queue_id": queue.id,
        "task_path": spec.task_path,
        "args": args,
        "kwargs": kwargs,
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
    # Sealed first: an encrypted job's sealed text is what ``offload.Writing`` may store.
    return encryption.seal_row(fields, task, queue)


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
    # Large arguments go to the payload storage first, outside any transaction; a failed
    # insert deletes the object again (queues.offload).
    writing = offload.Writing()
    row = writing.arguments(fields)
    # One statement needs no transaction of its own, except a savepoint when a duplicate
    # key may fail it inside the caller's transaction, or a ledger row goes with it.
    guard = (
        row is not fields
        or not engine.insert_job_is_one_statement
        or (spec.idempotency_key is not None and transaction.get_connection().in_atomic_block)
    )
    try:
        with writing, transaction.atomic() if guard else nullcontext():
            job_id = engine.insert_job(row, counted)
            writing.record([row], [job_id])
    except IntegrityError:
        if existing := _existing(queue.id, spec.idempotency_key):
            return existing, False
        raise
    job = Job(id=job_id, **{**row, **{name: json.loads(row[name]) for name in ("args", "kwargs", "meta")}})
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
    queues, rows = _validated_rows(specs, now)
    keyed: dict[int, set[str]] = defaultdict(set)
    for row in rows:
        if row["idempotency_key"] is not None:
            keyed[row["queue_id"]].add(row["idempotency_key"])
    # Large arguments go to the payload storage before the transaction; the objects of
    # rows not inserted (duplicates, or every row if the batch fails) are deleted again.
    writing = offload.Writing()
    rows = writing.rows(rows)
    with writing, transaction.atomic():
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
        ids = _insert_rows(engine, new, batch_size)
        writing.record(new, ids)
        _announce(engine, new, queues, now)
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


def _validated_rows(specs: Sequence[JobSpec], now: datetime) -> tuple[dict[str, Queue], list[dict[str, Any]]]:
    """The queues the specs go to, by name, and each spec's validated column values: what a
    batch of jobs (``enqueue_many``) and a workflow's steps are checked and built with."""
    queues = {name: get_queue(name) for name in {spec.queue for spec in specs}}
    return queues, [_job_fields(spec, queues[spec.queue], now) for spec in specs]


def _insert_rows(engine: Engine, rows: Sequence[dict[str, Any]], batch_size: int) -> list[int]:
    """Insert validated job rows ``batch_size`` at a time (COPY on PostgreSQL); their ids in order."""
    ids: list[int] = []
    for start in range(0, len(rows), batch_size):
        ids += engine.insert_jobs(rows[start : start + batch_size])
    return ids


def _announce(
    engine: Engine, rows: Sequence[dict[str, Any]], queues: Mapping[str, Queue], now: datetime
) -> None:
    """Add newly inserted rows to the per-minute enqueued counts, and wake the workers of
    ``queues`` when the transaction commits."""
    engine.upsert_minute_stats(
        [
            count
            for queue in queues.values()
            for count in _enqueued_counts(
                [row for row in rows if row["queue_id"] == queue.id], queue.name, now
            )
        ]
    )
    engine.notify(sorted(queues))


def _enqueued_counts(rows: Iterable[dict[str, Any]], queue_name: str, now: datetime) -> list[tuple]:
    """Minute-rollup rows adding these new jobs to the enqueued counts."""
    per_task: dict[str, int] = defaultdict(int)
    for row in rows:
        per_task[row["task_path"]] += 1
    minute = now.replace(second=0, microsecond=0)
    return [(minute, queue_name, task, count, 0, 0, 0, 0, 0.0) for task, count in per_task.items()]
