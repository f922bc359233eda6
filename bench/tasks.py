"""Taskweb's side of the benchmark: the no-op task and the latency probe."""

from __future__ import annotations

from bench import stamps
from queues.compat import task


@task
def noop() -> None:
    """Does nothing, so a drain measures the queue, not the work."""


@task
def stamp(path: str, enqueued: float) -> None:
    stamps.record(path, enqueued)
