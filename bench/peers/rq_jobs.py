"""Job functions for RQ (imported by dotted path in its workers)."""

from __future__ import annotations

from bench import stamps


def noop() -> None:
    pass


def stamp(path: str, enqueued: float) -> None:
    stamps.record(path, enqueued)


def long(path: str, enqueued: float, seconds: float) -> None:
    stamps.record(path, enqueued)
    stamps.hold(seconds)
