"""Console page for schedules and circuit breakers: what runs when, and what is held back.

The tables refresh themselves every few seconds (htmx polling of one partial);
"run now" and "close circuit" go through ``queues.scheduler`` and ``queues.flow_control``
like the API and CLI do.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_POST

from .. import flow_control, scheduler
from ..exceptions import InvalidJob
from ..models import Schedule
from . import converters  # noqa: F401  (registers <task:>)
from .permissions import action_required, allowed_actions, can, operator_required
from .responses import flash


def _context(request: HttpRequest) -> dict[str, object]:
    return {
        "schedules": Schedule.objects.select_related("queue", "last_job").order_by("name"),
        "circuits": flow_control.open_circuits(),
        "now": timezone.now(),
        "can_run": can(request.user, "schedule.run"),
        "can_close": can(request.user, "circuit.close"),
    }


@operator_required
def schedules(request: HttpRequest) -> HttpResponse:
    if request.headers.get("HX-Request"):
        return render(request, "queues/live/schedules.html", _context(request))
    context = {"socket_url": "", "allowed": allowed_actions(request.user), **_context(request)}
    return render(request, "queues/schedules.html", context)


@require_POST
@action_required("schedule.run")
def schedule_run(request: HttpRequest, schedule_id: int) -> HttpResponse:
    schedule = get_object_or_404(Schedule, pk=schedule_id)
    try:
        job = scheduler.run_now(schedule)
    except InvalidJob as exc:
        return flash(request, f"Schedule {schedule.name} could not run: {exc}", "error", 409)
    return flash(request, f"Schedule {schedule.name} enqueued job {job.pk}.")


@require_POST
@action_required("circuit.close")
def circuit_close(request: HttpRequest, task_path: str) -> HttpResponse:
    if not flow_control.reset_circuit(task_path):
        return flash(request, f"The circuit of {task_path} is not open.", "error", 409)
    return flash(request, f"Circuit of {task_path} closed: its jobs run again.")


urlpatterns = [
    path("schedules/", schedules, name="schedules"),
    path("schedules/<int:schedule_id>/run", schedule_run, name="schedule-run"),
    path("circuits/<task:task_path>/close", circuit_close, name="circuit-close"),
]
