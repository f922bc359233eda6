"""Console page for schedules and circuit breakers: what runs when, and what is held back.

The tables refresh themselves every few seconds (htmx polling of one partial);
"run now" and "close circuit" go through ``queues.scheduler`` and ``queues.flow``
like the API and CLI do.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_POST

from .. import flow, scheduler
from ..exceptions import InvalidJob
from ..models import Schedule
from . import converters  # noqa: F401  (registers <task:>)
from .permissions import allowed_actions, is_operator, operator_required
from .responses import flash

RUN_PERMISSION = "queues.change_schedule"
CIRCUIT_PERMISSION = "queues.change_queue"


def _context(request: HttpRequest) -> dict[str, object]:
    return {
        "schedules": Schedule.objects.select_related("queue", "last_job").order_by("name"),
        "circuits": flow.open_circuits(),
        "now": timezone.now(),
        "can_run": request.user.has_perm(RUN_PERMISSION),
        "can_close": request.user.has_perm(CIRCUIT_PERMISSION),
    }


@operator_required
def schedules(request: HttpRequest) -> HttpResponse:
    if request.headers.get("HX-Request"):
        return render(request, "queues/live/schedules.html", _context(request))
    context = {"socket_url": "", "allowed": allowed_actions(request.user), **_context(request)}
    return render(request, "queues/schedules.html", context)


def _may(request: HttpRequest, permission: str) -> HttpResponse | None:
    if not (is_operator(request.user) and request.user.has_perm(permission)):
        return flash(
            request, f"You may look but not act: this needs the {permission} permission.", "error", 403
        )
    return None


@require_POST
@operator_required
def schedule_run(request: HttpRequest, schedule_id: int) -> HttpResponse:
    if refused := _may(request, RUN_PERMISSION):
        return refused
    schedule = get_object_or_404(Schedule, pk=schedule_id)
    try:
        job = scheduler.run_now(schedule)
    except InvalidJob as exc:
        return flash(request, f"Schedule {schedule.name} could not run: {exc}", "error", 409)
    return flash(request, f"Schedule {schedule.name} enqueued job {job.pk}.")


@require_POST
@operator_required
def circuit_close(request: HttpRequest, task_path: str) -> HttpResponse:
    if refused := _may(request, CIRCUIT_PERMISSION):
        return refused
    if not flow.reset_circuit(task_path):
        return flash(request, f"The circuit of {task_path} is not open.", "error", 409)
    return flash(request, f"Circuit of {task_path} closed: its jobs run again.")


urlpatterns = [
    path("schedules/", schedules, name="schedules"),
    path("schedules/<int:schedule_id>/run", schedule_run, name="schedule-run"),
    path("circuits/<task:task_path>/close", circuit_close, name="circuit-close"),
]
