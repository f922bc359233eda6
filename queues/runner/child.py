"""Runs one claimed job in a worker's child process and describes how it ended.

No database writes about the job's state happen here: the outcome goes back to
the parent worker, which records it through the lifecycle in batches.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import traceback
from dataclasses import dataclass, replace
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

from django import db

from .. import encryption, logs, offload, progress, registry, storable, tracing
from ..compat import TaskContext, TaskResult, TaskResultStatus, normalize_json
from ..exceptions import (
    InvalidJob,
    NonRetryable,
    PayloadUnavailable,
    ResultNotSerialisable,
    ResultTooLarge,
    TaskImportError,
    error_path,
)
from ..models import Job
from ..values import ClaimedJob

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True, slots=True)
class Assignment:
    """What a child needs to run one attempt: the claimed job (plain data, never a pickled
    Task) and the worker it runs for."""

    job: ClaimedJob
    worker_id: str

    @property
    def args(self) -> list[Any]:
        return self.job.args

    @property
    def kwargs(self) -> dict[str, Any]:
        return self.job.kwargs

    def with_arguments(self, args: list[Any], kwargs: dict[str, Any]) -> Assignment:
        """The same attempt with its arguments as the task will see them (fetched, opened)."""
        return replace(self, job=replace(self.job, args=args, kwargs=kwargs))


@dataclass(frozen=True, slots=True)
class Report:
    """How one attempt ended, sent back to the parent."""

    job_id: int
    ok: bool
    result_json: str | None = None
    error_type: str = ""
    error_message: str = ""
    traceback: str = ""
    retryable: bool = True


def run(assignment: Assignment) -> Report:
    """Run the attempt with its job in the log context (and a trace span, if tracing is on)."""
    job = assignment.job
    fields = {
        "job_id": job.id,
        "queue": job.queue_name,
        "task": job.task_path,
        "attempt": job.attempt,
        "worker": assignment.worker_id,
    }
    with logs.bind(**fields), tracing.run_span(fields, partial(_meta, job.id)):
        return _stored(assignment)


def _stored(assignment: Assignment) -> Report:
    """The attempt with its payloads where they are kept: arguments fetched from a storage
    and then opened, a result sealed and then stored (``encryption.run_opened``), so that
    an encrypted job's payload is sealed wherever it lies."""
    try:
        assignment = offload.fetched(assignment)  # large arguments wait in a storage
    except PayloadUnavailable as exc:  # a storage outage: retried per policy
        return _failed(assignment, exc, retryable=True)
    report = encryption.run_opened(assignment, _run, _failed)
    if report.result_json is None:
        return report
    try:  # a large result goes to a storage
        return replace(report, result_json=offload.result_text(report.result_json, assignment.job.id))
    except (ResultTooLarge, PayloadUnavailable) as exc:
        return _failed(assignment, exc, retryable=not isinstance(exc, NonRetryable))


def _meta(job_id: int) -> dict[str, Any]:
    return Job.objects.filter(id=job_id).values_list("meta", flat=True).first() or {}


def _run(assignment: Assignment) -> Report:
    """Import the task, call it, and capture its return value or its exception.

    Any exception counts, BaseException included: a task calling ``exit()`` or raising
    KeyboardInterrupt fails its attempt like any other error, with its own class and
    traceback, and this child goes on to the next job.
    """
    try:
        task = registry.load(assignment.job.task_path)
    except InvalidJob as exc:
        # Retrying cannot fix a task that does not exist: fail it for good, clearly.
        return _failed(assignment, TaskImportError(str(exc)), retryable=False)
    token = progress._running.set((assignment.job.id, assignment.job.attempt))
    try:
        args, kwargs = arguments(assignment)
        if task.takes_context:
            args = [_context(task, assignment), *args]
        value = task.call(*args, **kwargs)
        try:
            # Return values are normalised as the Tasks API does (a tuple is a list,
            # bytes are text), then held to what the database can store.
            result_json = json.dumps(storable.stored(value, normalize_json))
        except (TypeError, ValueError) as exc:
            failure = ResultNotSerialisable(f"The task returned a value that cannot be stored as JSON: {exc}")
            failure.__cause__ = exc
            return _failed(assignment, failure, retryable=False)
        return Report(assignment.job.id, ok=True, result_json=result_json)
    except BaseException as exc:  # the attempt's outcome, whatever ended it
        retryable = not isinstance(exc, NonRetryable) and getattr(task, "is_retryable", lambda e: True)(exc)
        return _failed(assignment, exc, retryable=retryable)
    finally:
        progress._running.reset(token)


def arguments(assignment: Assignment) -> tuple[list[Any], dict[str, Any]]:
    """The positional and keyword arguments the task is called with, read from the assignment.

    The one place the child reads a job's arguments, so that a change to how they
    travel (an encoding, a payload stored elsewhere) has one place to go.
    """
    return list(assignment.args), dict(assignment.kwargs)


def _failed(assignment: Assignment, exc: BaseException, retryable: bool) -> Report:
    return Report(
        assignment.job.id,
        ok=False,
        error_type=error_path(type(exc)),
        error_message=str(exc)[:2000],
        traceback="".join(traceback.format_exception(exc))[-20000:],
        retryable=retryable,
    )


def _context(task: Any, assignment: Assignment) -> TaskContext:
    result = TaskResult(
        task=task,
        id=str(assignment.job.id),
        status=TaskResultStatus.RUNNING,
        enqueued_at=None,
        started_at=None,
        finished_at=None,
        last_attempted_at=None,
        args=assignment.args,
        kwargs=assignment.kwargs,
        backend=task.backend,
        errors=[],
        worker_ids=[assignment.worker_id] * assignment.job.attempt,
    )
    return TaskContext(task_result=result)


def _die_with_parent() -> None:
    """If the worker is killed (even with SIGKILL), its children must not run on unseen."""
    if sys.platform.startswith("linux"):
        parent = os.getppid()
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)


def child_main(conn: Connection) -> None:
    """Loop of a worker's child process: run each assignment it is given, report each one.

    The parent sends a job only while this child is idle, so nothing ever waits here
    behind a running job. Signals are the parent's business: it decides when a child
    stops (when idle, or killed on timeout), so Ctrl-C in a terminal never cuts a job
    short here.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    try:
        serve(conn)
    finally:
        os._exit(0)


def serve(conn: Connection) -> None:
    """Run each assignment that comes down ``conn`` and send back its report, until the
    parent says stop (None) or hangs up; a child process's loop, and a job thread's."""
    try:
        while True:
            try:
                assignment = conn.recv()
            except EOFError:
                break
            if assignment is None:
                break
            report = run(assignment)
            try:
                conn.send(report)
            except OSError:  # the parent gave up on this job (a thread past its timeout)
                break
            # Between jobs, as between requests: drop a connection that broke or aged out.
            db.close_old_connections()
    finally:
        db.connections.close_all()
