"""Which dead letters or jobs an operator means: one filter for the API, taskctl and the console."""

from __future__ import annotations

from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast

from .encryption import META_KEY, search_note
from .models import DeadLetter, Job


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


def with_args_text(jobs: QuerySet[Job]) -> QuerySet[Job]:
    return jobs.annotate(args_text=Cast("args", TextField()))


def encrypted(jobs: QuerySet[Job]) -> QuerySet[Job]:
    return jobs.filter(meta__has_key=META_KEY)


def jobs_with_args(jobs: QuerySet[Job], text: str) -> tuple[QuerySet[Job], str | None]:
    """The jobs whose JSON arguments contain ``text``, and a note saying how many encrypted
    jobs among ``jobs`` the search could not look into (None when there are none): their
    arguments are ciphertext, so they never match, and the reader must know they exist."""
    matching = with_args_text(jobs.exclude(meta__has_key=META_KEY)).filter(args_text__icontains=text)
    return matching, search_note(encrypted(jobs).count())
