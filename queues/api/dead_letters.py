"""Dead letters: list, replay one, replay every match, delete (discard the dead job)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Path as PathParam
from ninja import Query, Router
from ninja import Status as Reply  # the HTTP status; Status means a job's

from .. import lifecycle
from ..exceptions import JobStateError
from ..filters import DeadLetterFilter
from ..models import DeadLetter, Job
from ..serializers import dead_letter_out, job_detail
from ..states import Status
from . import pages, security
from .errors import CONFLICT, get_or_404
from .schemas import MAX_ID, Count, DeadLetterFilters, DeadLetterPage, JobDetailOut, ReplayMatching
from .security import requires

router = Router(tags=["dead letters"])


def _letter(letter_id: int) -> DeadLetter:
    return get_or_404(DeadLetter.objects.all(), f"Dead letter {letter_id}", pk=letter_id)


@router.get(
    "/dead-letters", response=DeadLetterPage, summary="Dead letters, newest first", auth=requires("view")
)
def list_dead_letters(request: HttpRequest, filters: Query[DeadLetterFilters]) -> dict[str, Any]:
    wanted = DeadLetterFilter(
        queue=filters.queue, task=filters.task, error_type=filters.error_type, replayed=filters.replayed
    )
    letters = wanted.queryset(DeadLetter.objects.all())
    items, next_cursor = pages.page(letters, filters.cursor, filters.limit)
    reveal = security.reveals(request)
    return pages.with_next([dead_letter_out(letter, reveal) for letter in items], next_cursor)


@router.post(
    "/dead-letters/replay",
    response=Count,
    summary="Replay every dead letter that matches",
    auth=requires("dead.replay"),
)
def replay_matching(request: HttpRequest, payload: ReplayMatching) -> dict[str, int]:
    """An empty filter replays every dead job; each goes back to queued with a fresh budget."""
    wanted = DeadLetterFilter(queue=payload.queue, task=payload.task, error_type=payload.error_type)
    return {"count": lifecycle.replay_many(wanted.jobs(), by=security.actor(request))}


@router.post(
    "/dead-letters/{letter_id}/replay",
    response={200: JobDetailOut, **CONFLICT},
    summary="Replay one dead job",
    auth=requires("dead.replay"),
)
def replay(request: HttpRequest, letter_id: int = PathParam(..., ge=1, le=MAX_ID)) -> dict[str, Any]:
    """409 when the job is no longer dead (already replayed, say)."""
    job_id = _letter(letter_id).job_id
    lifecycle.replay(job_id, by=security.actor(request))
    return job_detail(job_id, security.reveals(request))


@router.delete(
    "/dead-letters/{letter_id}",
    response={204: None, **CONFLICT},
    summary="Discard a dead job",
    auth=requires("job.delete"),
)
def delete(request: HttpRequest, letter_id: int = PathParam(..., ge=1, le=MAX_ID)) -> Reply:
    """Deletes the dead job with its history; 409 if it was replayed and is live again."""
    letter = _letter(letter_id)
    if not lifecycle.delete_jobs([letter.job_id], dead_only=True):
        status = Job.objects.filter(pk=letter.job_id).values_list("status", flat=True).first() or "gone"
        raise JobStateError(letter.job_id, "delete", status, frozenset({Status.DEAD}))
    return Reply(204, None)
