"""Log lines that say which job, worker or request they belong to.

Context (job id, queue, task, attempt, worker, request id) is bound for a stretch
of code with ``bind(...)`` and lives in a context variable, so that every log line
emitted meanwhile, by Taskweb or by the task's own code, carries it. The
``ContextFilter`` copies it onto each record; ``JsonFormatter`` writes one JSON
object per line (``LOG_FORMAT=json``, for log shippers), ``PlainFormatter``
appends it as ``key=value`` pairs (the default, for people at a terminal).
``show_command_logs`` makes ``runworker`` and ``runbroker`` speak in a project that
configured no logging at all.

This module is imported by the logging configuration, before apps are ready:
standard library only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

COMMAND_HANDLER = "queues.command"
"""Name of the handler ``show_command_logs`` adds, so that it is added once."""

FIELDS = ("request_id", "job_id", "queue", "task", "attempt", "worker")
"""Context fields, in the order they are shown."""

_context: ContextVar[dict[str, Any]] = ContextVar("taskweb_log_context", default={})  # noqa: B039  (never mutated)


@contextmanager
def bind(**fields: Any) -> Iterator[None]:
    """Add ``fields`` to the log context of every line logged inside the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def set_process_context(**fields: Any) -> None:
    """Bind ``fields`` for the rest of this process (e.g. a worker's id in all its lines)."""
    _context.set({**_context.get(), **fields})


def current() -> dict[str, Any]:
    return dict(_context.get())


def job_fields(job: Any, worker_id: str) -> dict[str, Any]:
    """``extra=`` for a log line about a claimed job logged outside its ``bind`` block."""
    return {
        "job_id": job.id,
        "queue": job.queue_name,
        "task": job.task_path,
        "attempt": job.attempt,
        "worker": worker_id,
    }


class ContextFilter(logging.Filter):
    """Copies the bound context onto each record (``extra=`` values win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in FIELDS if getattr(record, name, None) is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class PlainFormatter(logging.Formatter):
    """The usual text line, then the context as ``key=value`` pairs."""

    def __init__(self, fmt: str | None = None, **kwargs: Any) -> None:
        super().__init__(fmt or "%(asctime)s %(levelname)s %(name)s %(message)s", **kwargs)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _fields(record)
        if not fields:
            return text
        first, newline, rest = text.partition("\n")
        context = " ".join(f"{name}={value}" for name, value in fields.items())
        return f"{first} [{context}]{newline}{rest}"


def show_command_logs(verbosity: int) -> None:
    """Send the ``queues`` loggers' lines to stderr for a long-running command.

    A fresh ``startproject`` configures no logging, so Python would print only warnings,
    bare. Then this adds one handler (plain text with the context) to the ``queues``
    logger, at the level ``-v`` asks for: 0 warnings and errors, 1 (the default) INFO,
    2 and 3 DEBUG. A project whose logging has a handler on the root or ``queues``
    logger keeps its own set-up (no line twice); there only an explicit ``-v 0/2/3``
    changes the level of the ``queues`` logger.
    """
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)
    package = logging.getLogger("queues")
    ours = [handler for handler in package.handlers if handler.get_name() == COMMAND_HANDLER]
    if [h for h in package.handlers if h not in ours] or logging.getLogger().handlers:
        if verbosity != 1:
            package.setLevel(level)
        return
    if not ours:
        handler = logging.StreamHandler()
        handler.set_name(COMMAND_HANDLER)
        handler.setFormatter(PlainFormatter())
        handler.addFilter(ContextFilter())
        package.addHandler(handler)
    package.setLevel(level)
