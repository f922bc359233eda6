"""Tasks outside every app's ``tasks`` module: workers import them from the stored path."""

from __future__ import annotations

from queues.compat import task


@task
def shout(text: str) -> str:
    return text.upper()
