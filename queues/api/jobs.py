"""Jobs: enqueue, read, list, cancel, retry."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query
from ninja import Status as Reply  # the HTTP status; Status means a job's

from .. import lifecycle, webhooks
from ..filters import JobFilter
from ..models import Job
from ..serializers import job_out
from . import pages, security
from .routes import Routes, RowId, job_answer
from .schemas import JobDetailOut, JobFilters, JobIn, JobOut, JobPage
from .specs import delayed, job_spec

router = Routes("/jobs", tags=["jobs"])


@router.action("", {200: JobOut, 201: JobOut}, "Enqueue a job", "job.enqueue")
def enqueue(request: HttpRequest, payload: JobIn) -> Reply:
    """201 with the new job; 200 with the existing job when its idempotency_key is taken."""
    meta = {}
    if payload.callback_url is not None:
        meta["callback_url"] = webhooks.validate_callback_url(payload.callback_url)
    job, created = lifecycle.enqueue(
        job_spec(
            payload,
            run_after=delayed(payload.delay, timezone.now()) or payload.run_at,
            max_attempts=payload.max_attempts,
            timeout=payload.timeout,
            idempotency_key=payload.idempotency_key,
            meta=meta,
        )
    )
    shown = job_out(job, payload.queue if created else None, security.reveals(request))
    return Reply(201 if created else 200, shown)


@router.read("", JobPage, "List jobs, newest first")
def list_jobs(request: HttpRequest, filters: Query[JobFilters]) -> dict[str, Any]:
    wanted = JobFilter(queue=filters.queue, status=filters.status, task=filters.task, q=filters.q)
    jobs = wanted.queryset(Job.objects.select_related("queue"))
    note = wanted.search_note(Job.objects.all())
    reveal = security.reveals(request)
    return {**pages.listing(jobs, filters, lambda job: job_out(job, reveal=reveal)), "note": note}


@router.read("/{job_id}", JobDetailOut, "A job with its attempt history")
def get_job(request: HttpRequest, job_id: int = RowId) -> dict[str, Any]:
    return job_answer(request, job_id)


@router.action(
    "/{job_id}/cancel", JobDetailOut, "Cancel a waiting or running job", "job.cancel", conflict=True
)
def cancel(request: HttpRequest, job_id: int = RowId) -> dict[str, Any]:
    lifecycle.cancel(job_id)
    return job_answer(request, job_id)


@router.action("/{job_id}/retry", JobDetailOut, "Run a finished job again now", "job.retry", conflict=True)
def retry(request: HttpRequest, job_id: int = RowId) -> dict[str, Any]:
    """A scheduled, succeeded, cancelled or dead job goes back to queued with a fresh budget."""
    lifecycle.retry(job_id, by=security.actor(request))
    return job_answer(request, job_id)
