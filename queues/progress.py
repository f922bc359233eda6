"""Lets a running task say how far it has got: ``set_progress(40, "resizing")``."""

from __future__ import annotations

from contextvars import ContextVar

from . import lifecycle

_running: ContextVar[tuple[int, int] | None] = ContextVar("taskweb_running_job", default=None)


def current_job() -> tuple[int, int] | None:
    """(job id, attempt) of the job running in this process, if any."""
    return _running.get()


def set_progress(percent: float, message: str = "") -> bool:
    """Store progress (0-100) and a short message for the job running here.

    Returns False if the attempt no longer runs (cancelled or recovered elsewhere).
    Outside a worker (e.g. a test calling the function directly) it does nothing.
    """
    running = _running.get()
    if running is None:
        return False
    job_id, attempt = running
    return lifecycle.report_progress(job_id, attempt, percent, message)
