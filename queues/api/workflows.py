"""Workflows: create one from JSON (steps by name), list, read, cancel, retry a step."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils import timezone
from ninja import Query
from ninja import Status as Reply

from .. import lifecycle, values, workflow_data
from ..models import Workflow
from . import pages, security
from .routes import Routes, RowId
from .schemas import StepName, WorkflowDetailOut, WorkflowFilters, WorkflowIn, WorkflowPage
from .specs import delayed, job_spec

router = Routes("/workflows", tags=["workflows"])


def _detail(workflow_id: int) -> dict[str, Any]:
    """A workflow with its steps, as the operations on one answer it."""
    return workflow_data.detail(lifecycle.get_workflow(workflow_id))


@router.action(
    "",
    {201: WorkflowDetailOut},
    "Enqueue a workflow: every step at once, in one transaction",
    "workflow.enqueue",
)
def create(request: HttpRequest, payload: WorkflowIn) -> Reply:
    """Steps name the steps they wait for in depends_on; a step runs once they have all
    succeeded. Either every step is valid and enqueued, or nothing is (400 naming why)."""
    now = timezone.now()
    steps = [
        values.StepSpec(
            name=step.name,
            job=job_spec(
                step,
                max_attempts=step.max_attempts,
                timeout=step.timeout,
                run_after=delayed(step.delay, now),
            ),
            depends_on=tuple(step.depends_on),
            pass_result=step.pass_result,
            run_anyway=step.run_anyway,
        )
        for step in payload.steps
    ]
    callbacks = {
        name: job_spec(given) for name in Workflow.CALLBACKS if (given := getattr(payload, name)) is not None
    }
    workflow = lifecycle.create_workflow(steps, callbacks, name=payload.name)
    return Reply(201, workflow_data.detail(workflow))


@router.read("", WorkflowPage, "List workflows, newest first")
def list_workflows(request: HttpRequest, filters: Query[WorkflowFilters]) -> dict[str, Any]:
    rows = Workflow.objects.all()
    if filters.status:
        rows = rows.filter(finished_at__isnull=filters.status == "running")
    return pages.listing(rows, filters, workflow_data.summary)


@router.read("/{workflow_id}", WorkflowDetailOut, "A workflow with its steps and their states")
def get_workflow(request: HttpRequest, workflow_id: int = RowId) -> dict[str, Any]:
    return _detail(workflow_id)


@router.action(
    "/{workflow_id}/cancel",
    WorkflowDetailOut,
    "Cancel every unfinished step of a workflow",
    "workflow.cancel",
)
def cancel(request: HttpRequest, workflow_id: int = RowId) -> dict[str, Any]:
    return workflow_data.detail(lifecycle.cancel_workflow(workflow_id))


@router.action(
    "/{workflow_id}/steps/{step}/retry",
    WorkflowDetailOut,
    "Run a finished step again (its cancelled dependents wait for it again)",
    "job.retry",
    conflict=True,
)
def retry_step(request: HttpRequest, step: StepName, workflow_id: int = RowId) -> dict[str, Any]:
    lifecycle.retry(lifecycle.step_job_id(workflow_id, step), by=security.actor(request))
    return _detail(workflow_id)
