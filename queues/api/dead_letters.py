"""Dead letters: list, replay one, replay every match, delete (discard the dead job)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query
from ninja import Status as Reply  # the HTTP status; Status means a job's

from .. import lifecycle
from ..exceptions import JobStateError
from ..filters import DeadLetterFilter
from ..models import DeadLetter, Job
from ..serializers import dead_letter_out
from ..states import Status
from . import pages, security
from .errors import get_or_404
from .routes import Routes, RowId, job_answer
from .schemas import Count, DeadLetterFilters, DeadLetterPage, JobDetailOut, ReplayMatching

router = Routes("/dead-letters", tags=["dead letters"])


def _letter(letter_id: int) -> DeadLetter:
    return get_or_404(DeadLetter.objects.all(), f"Dead letter {letter_id}", pk=letter_id)


@router.read("", DeadLetterPage, "Dead letters, newest first")
def list_dead_letters(request: HttpRequest, filters: Query[DeadLetterFilters]) -> dict[str, Any]:
    wanted = DeadLetterFilter(
        queue=filters.queue, task=filters.task, error_type=filters.error_type, replayed=filters.replayed
    )
    letters = wanted.queryset(DeadLetter.objects.all())
    reveal = security.reveals(request)
    return pages.listing(letters, filters, lambda letter: dead_letter_out(letter, reveal))


@router.action("/replay", Count, "Replay every dead letter that matches", "dead.replay")
def replay_matching(request: HttpRequest, payload: ReplayMatching) -> dict[str, int]:
    """An empty filter replays every dead job; each goes back to queued with a fresh budget."""
    wanted = DeadLetterFilter(queue=payload.queue, task=payload.task, error_type=payload.error_type)
    return {"count": lifecycle.replay_many(wanted.jobs(), by=security.actor(request))}


@router.action("/{letter_id}/replay", JobDetailOut, "Replay one dead job", "dead.replay", conflict=True)
def replay(request: HttpRequest, letter_id: int = RowId) -> dict[str, Any]:
    """409 when the job is no longer dead (already replayed, say)."""
    job_id = _letter(letter_id).job_id
    lifecycle.replay(job_id, by=security.actor(request))
    return job_answer(request, job_id)


@router.action(
    "/{letter_id}", {204: None}, "Discard a dead job", "job.delete", conflict=True, method="DELETE"
)
def delete(request: HttpRequest, letter_id: int = RowId) -> Reply:
    """Deletes the dead job with its history; 409 if it was replayed and is live again."""
    letter = _letter(letter_id)
    if not lifecycle.delete_jobs([letter.job_id], dead_only=True):
        status = Job.objects.filter(pk=letter.job_id).values_list("status", flat=True).first() or "gone"
        raise JobStateError(letter.job_id, "delete", status, frozenset({Status.DEAD}))
    return Reply(204, None)
