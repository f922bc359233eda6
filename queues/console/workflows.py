"""Console pages for workflows: the list, and one workflow as its steps stage by stage.

Both refresh themselves every second (htmx polling of one partial, as the schedules
page does). Cancelling a workflow goes through ``lifecycle.cancel_workflow``; a step's
retry and cancel buttons are the job page's own actions.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.http import require_POST

from .. import lifecycle, workflow_data
from ..exceptions import WorkflowNotFound
from ..models import Workflow
from ..states import TRANSITIONS
from .permissions import action_required, allowed_actions, operator_required
from .responses import flash

LIST_LIMIT = 100


@operator_required
def workflows(request: HttpRequest) -> HttpResponse:
    context = {"workflows": [workflow_data.summary(w) for w in Workflow.objects.all()[:LIST_LIMIT]]}
    if request.headers.get("HX-Request"):
        return render(request, "queues/live/workflows.html", context)
    return render(
        request,
        "queues/workflows.html",
        {"socket_url": "", "allowed": allowed_actions(request.user), **context},
    )


@operator_required
def workflow_detail(request: HttpRequest, workflow_id: int) -> HttpResponse:
    try:
        workflow = lifecycle.get_workflow(workflow_id)
    except WorkflowNotFound as exc:
        raise Http404(str(exc)) from None
    allowed = allowed_actions(request.user)
    data = workflow_data.detail(workflow)
    for step in data["steps"]:
        step["can_retry"] = "job.retry" in allowed and step["status"] in TRANSITIONS["retry"]
        step["can_cancel"] = "job.cancel" in allowed and step["status"] in TRANSITIONS["cancel"]
    context = {
        "workflow": data,
        "can_cancel": "workflow.cancel" in allowed and data["status"] == "running",
    }
    if request.headers.get("HX-Request"):
        return render(request, "queues/live/workflow.html", context)
    return render(request, "queues/workflow.html", {"socket_url": "", "allowed": allowed, **context})


@require_POST
@action_required("workflow.cancel")
def workflow_cancel(request: HttpRequest, workflow_id: int) -> HttpResponse:
    try:
        workflow = lifecycle.cancel_workflow(workflow_id)
    except WorkflowNotFound as exc:
        return flash(request, str(exc), "error", 404)
    return flash(
        request, f"Workflow {workflow.id} cancelled: {workflow.cancelled} steps did not run to the end."
    )


urlpatterns = [
    path("workflows/", workflows, name="workflows"),
    path("workflows/<int:workflow_id>/", workflow_detail, name="workflow"),
    path("workflows/<int:workflow_id>/cancel", workflow_cancel, name="workflow-cancel"),
]
