"""Workflows: create one from JSON (steps by name), list, read, cancel, retry a step."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Path as PathParam
from ninja import Query, Router
from ninja import Status as Reply

from .. import lifecycle, values, workflow_data
from ..models import Workflow
from . import pages, security
from .errors import CONFLICT
from .schemas import (
    MAX_ID,
    CallbackIn,
    StepName,
    WorkflowDetailOut,
    WorkflowFilters,
    WorkflowIn,
    WorkflowPage,
)
from .security import requires

router = Router(tags=["workflows"])


def _job(given: CallbackIn, **options: Any) -> values.JobSpec:
    return values.JobSpec(
        task_path=given.task,
        args=given.args,
        kwargs=given.kwargs,
        queue=given.queue,
        priority=given.priority,
        **options,
    )


@router.post(
    "/workflows",
    response={201: WorkflowDetailOut},
    summary="Enqueue a workflow: every step at once, in one transaction",
    auth=requires("workflow.enqueue"),
)
def create(request: HttpRequest, payload: WorkflowIn) -> Reply:
    """Steps name the steps they wait for in depends_on; a step runs once they have all
    succeeded. Either every step is valid and enqueued, or nothing is (400 naming why)."""
    now = timezone.now()
    steps = [
        values.StepSpec(
            name=step.name,
            job=_job(
                step,
                max_attempts=step.max_attempts,
                timeout=step.timeout,
                run_after=None if step.delay is None else now + timedelta(seconds=step.delay),
            ),
            depends_on=tuple(step.depends_on),
            pass_result=step.pass_result,
            run_anyway=step.run_anyway,
        )
        for step in payload.steps
    ]
    callbacks = {
        name: _job(given) for name in Workflow.CALLBACKS if (given := getattr(payload, name)) is not None
    }
    workflow = lifecycle.create_workflow(steps, callbacks, name=payload.name)
    return Reply(201, workflow_data.detail(workflow))


@router.get(
    "/workflows", response=WorkflowPage, summary="List workflows, newest first", auth=requires("view")
)
def list_workflows(request: HttpRequest, filters: Query[WorkflowFilters]) -> dict[str, Any]:
    rows = Workflow.objects.all()
    if filters.status:
        rows = rows.filter(finished_at__isnull=filters.status == "running")
    items, next_cursor = pages.page(rows, filters.cursor, filters.limit)
    return pages.with_next([workflow_data.summary(w) for w in items], next_cursor)


@router.get(
    "/workflows/{workflow_id}",
    response=WorkflowDetailOut,
    summary="A workflow with its steps and their states",
    auth=requires("view"),
)
def get_workflow(request: HttpRequest, workflow_id: int = PathParam(..., ge=1, le=MAX_ID)) -> dict[str, Any]:
    return workflow_data.detail(lifecycle.get_workflow(workflow_id))


@router.post(
    "/workflows/{workflow_id}/cancel",
    response={200: WorkflowDetailOut},
    summary="Cancel every unfinished step of a workflow",
    auth=requires("workflow.cancel"),
)
def cancel(request: HttpRequest, workflow_id: int = PathParam(..., ge=1, le=MAX_ID)) -> dict[str, Any]:
    return workflow_data.detail(lifecycle.cancel_workflow(workflow_id))


@router.post(
    "/workflows/{workflow_id}/steps/{step}/retry",
    response={200: WorkflowDetailOut, **CONFLICT},
    summary="Run a finished step again (its cancelled dependents wait for it again)",
    auth=requires("job.retry"),
)
def retry_step(
    request: HttpRequest, step: StepName, workflow_id: int = PathParam(..., ge=1, le=MAX_ID)
) -> dict[str, Any]:
    lifecycle.retry(lifecycle.step_job_id(workflow_id, step), by=security.actor(request))
    return workflow_data.detail(lifecycle.get_workflow(workflow_id))
