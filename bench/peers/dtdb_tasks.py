"""The no-op, latency and long tasks for django-tasks-db."""

from __future__ import annotations

from django_tasks import task

from bench import stamps


@task
def noop() -> None:
    pass


@task
def stamp(path: str, enqueued: float) -> None:
    stamps.record(path, enqueued)


@task
def long(path: str, enqueued: float, seconds: float) -> None:
    stamps.record(path, enqueued)
    stamps.hold(seconds)
