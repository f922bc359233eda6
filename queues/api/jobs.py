"""Jobs: enqueue, read, list, cancel, retry."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Path as PathParam
from ninja import Query, Router
from ninja import Status as Reply  # the HTTP status; Status means a job's

from .. import lifecycle, values, webhooks
from ..filters import JobFilter
from ..models import Job
from ..serializers import job_detail, job_out
from . import pages, security
from .errors import CONFLICT
from .schemas import MAX_ID, JobDetailOut, JobFilters, JobIn, JobOut, JobPage
from .security import requires

router = Router(tags=["jobs"])


@router.post(
    "/jobs", response={200: JobOut, 201: JobOut}, summary="Enqueue a job", auth=requires("job.enqueue")
)
def enqueue(request: HttpRequest, payload: JobIn) -> Reply:
    """201 with the new job; 200 with the existing job when its idempotency_key is taken."""
    run_after = payload.run_at
    if payload.delay is not None:
        run_after = timezone.now() + timedelta(seconds=payload.delay)
    meta = {}
    if payload.callback_url is not None:
        meta["callback_url"] = webhooks.validate_callback_url(payload.callback_url)
    job, created = lifecycle.enqueue(
        values.JobSpec(
            task_path=payload.task,
            args=payload.args,
            kwargs=payload.kwargs,
            queue=payload.queue,
            priority=payload.priority,
            run_after=run_after,
            max_attempts=payload.max_attempts,
            timeout=payload.timeout,
            idempotency_key=payload.idempotency_key,
            meta=meta,
        )
    )
    shown = job_out(job, payload.queue if created else None, security.reveals(request))
    return Reply(201 if created else 200, shown)


@router.get("/jobs", response=JobPage, summary="List jobs, newest first", auth=requires("view"))
def list_jobs(request: HttpRequest, filters: Query[JobFilters]) -> dict[str, Any]:
    wanted = JobFilter(queue=filters.queue, status=filters.status, task=filters.task, q=filters.q)
    jobs = wanted.queryset(Job.objects.select_related("queue"))
    note = wanted.search_note(Job.objects.all())
    items, next_cursor = pages.page(jobs, filters.cursor, filters.limit)
    reveal = security.reveals(request)
    return {**pages.with_next([job_out(job, reveal=reveal) for job in items], next_cursor), "note": note}


@router.get(
    "/jobs/{job_id}", response=JobDetailOut, summary="A job with its attempt history", auth=requires("view")
)
def get_job(request: HttpRequest, job_id: int = PathParam(..., ge=1, le=MAX_ID)) -> dict[str, Any]:
    return job_detail(job_id, security.reveals(request))


@router.post(
    "/jobs/{job_id}/cancel",
    response={200: JobDetailOut, **CONFLICT},
    summary="Cancel a waiting or running job",
    auth=requires("job.cancel"),
)
def cancel(request: HttpRequest, job_id: int = PathParam(..., ge=1, le=MAX_ID)) -> dict[str, Any]:
    lifecycle.cancel(job_id)
    return job_detail(job_id, security.reveals(request))


@router.post(
    "/jobs/{job_id}/retry",
    response={200: JobDetailOut, **CONFLICT},
    summary="Run a finished job again now",
    auth=requires("job.retry"),
)
def retry(request: HttpRequest, job_id: int = PathParam(..., ge=1, le=MAX_ID)) -> dict[str, Any]:
    """A scheduled, succeeded, cancelled or dead job goes back to queued with a fresh budget."""
    lifecycle.retry(job_id, by=security.actor(request))
    return job_detail(job_id, security.reveals(request))
