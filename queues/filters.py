"""Which dead letters an operator means: one filter for the API, taskctl and the console."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import DeadLetter


def dead_letters_matching(
    letters: QuerySet[DeadLetter], queue: str | None, task: str | None, error_type: str | None
) -> QuerySet[DeadLetter]:
    if queue:
        letters = letters.filter(queue_name=queue)
    if task:
        letters = letters.filter(task_path=task)
    if error_type:
        letters = letters.filter(error_type=error_type)
    return letters
