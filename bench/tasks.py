"""Taskweb's side of the benchmark: the no-op task, the latency probe and W6's long job."""

from __future__ import annotations

from bench import stamps
from queues.compat import task


@task
def noop() -> None:
    """Does nothing, so a drain measures the queue, not the work."""


@task
def stamp(path: str, enqueued: float) -> None:
    stamps.record(path, enqueued)


@task
def long(path: str, enqueued: float, seconds: float) -> None:
    stamps.record(path, enqueued)
    stamps.hold(seconds)
