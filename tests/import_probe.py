"""Imported by nothing: tests prove that naming this module as a task never imports it."""

from __future__ import annotations

from queues.compat import task


@task
def anything() -> None:
    return None
