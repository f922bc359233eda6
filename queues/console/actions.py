"""Console actions (HTMX POSTs with the CSRF token). Each re-checks its permission,
calls the lifecycle (as the API does) and answers with out-of-band fragments."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from .. import counts, lifecycle
from ..exceptions import InvalidJob, InvalidQueue, JobNotFound, JobStateError, QueueConflict
from ..filters import DeadLetterFilter, JobFilter
from ..models import Job, Queue
from ..states import TRANSITIONS, Status
from . import bulk, render
from .forms import QueueCreateForm, QueueSettingsForm
from .permissions import action_required, allowed_actions, can, operator_required, refuse
from .responses import flash, redirect

JOB_VERBS = {"retry": "Retried", "cancel": "Cancelled", "delete": "Deleted"}


def _selected_ids(data: QueryDict) -> list[int]:
    return [int(value) for value in data.getlist("ids") if value.isdigit()]


# --- one job --------------------------------------------------------------------------


@require_POST
@action_required("job.retry")
def job_retry(request: HttpRequest, job_id: int) -> HttpResponse:
    return _job_action(
        request, job_id, lambda: lifecycle.retry(job_id, by=request.user.get_username()), "retried"
    )


@require_POST
@action_required("job.cancel")
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    return _job_action(request, job_id, lambda: lifecycle.cancel(job_id), "cancelled")


def _job_action(request: HttpRequest, job_id: int, call, done: str) -> HttpResponse:
    try:
        call()
    except (JobNotFound, JobStateError) as exc:
        return flash(request, str(exc), "error", 409)
    return flash(request, f"Job {job_id} {done}.")


@require_POST
@action_required("job.delete")
def job_delete(request: HttpRequest, job_id: int) -> HttpResponse:
    if not lifecycle.delete_jobs([job_id]):
        return flash(request, f"Job {job_id} is running or gone; it was not deleted.", "error", 409)
    return redirect(reverse("console:jobs"))


@require_POST
@operator_required
def jobs_bulk(request: HttpRequest) -> HttpResponse:
    action = request.POST.get("action", "")
    if action not in JOB_VERBS:
        return flash(request, "Choose retry, cancel or delete.", "error", 400)
    if not can(request.user, f"job.{action}"):
        return refuse(request, f"job.{action}")
    if request.POST.get("all_matching"):
        try:
            wanted = JobFilter.parse(request.POST)
        except InvalidJob as exc:
            return flash(request, f"Nothing was done: {exc}", "error", 400)
        matching = wanted.queryset(Job.objects.all()).order_by("-id")
        ids = matching.values_list("id", flat=True).iterator(chunk_size=bulk.CHUNK)
    else:
        ids = iter(_selected_ids(request.POST))
    outcome = bulk.run(action, ids, by=request.user.get_username())
    return flash(request, outcome.message(JOB_VERBS[action]))


# --- dead letters ---------------------------------------------------------------------


def _dead_jobs(data: QueryDict) -> QuerySet[Job]:
    """The dead jobs an operator picked: the ticked ones, or every one matching the filters
    (``InvalidJob`` when the filters are not ones a page would send)."""
    if data.get("all_matching"):
        return DeadLetterFilter.parse(data).jobs()
    return Job.objects.filter(id__in=_selected_ids(data), status=Status.DEAD)


@require_GET
@action_required("dead.replay")
def dead_confirm(request: HttpRequest) -> HttpResponse:
    """Say how many jobs a replay or delete of everything matching would touch, before it runs."""
    action = request.GET.get("action") if request.GET.get("action") in ("replay", "delete") else "replay"
    try:
        wanted = DeadLetterFilter.parse(request.GET)
    except InvalidJob as exc:
        return flash(request, str(exc), "error", 400)
    context = {"count": counts.count(wanted.jobs()), "filters": wanted.query(), "action": action}
    return HttpResponse(render_to_string("queues/partials/dead_confirm.html", context, request))


@require_POST
@action_required("dead.replay")
def dead_replay(request: HttpRequest) -> HttpResponse:
    try:
        replayed = lifecycle.replay_many(_dead_jobs(request.POST), by=request.user.get_username())
    except InvalidJob as exc:
        return flash(request, f"Nothing was replayed: {exc}", "error", 400)
    message = f"Replayed {replayed} job{'s' if replayed != 1 else ''}."
    return flash(request, message, extra=render.emptied("dead-confirm"))


@require_POST
@action_required("job.delete")
def dead_delete(request: HttpRequest) -> HttpResponse:
    try:
        jobs = _dead_jobs(request.POST)
    except InvalidJob as exc:
        return flash(request, f"Nothing was deleted: {exc}", "error", 400)
    ids = jobs.values_list("id", flat=True).iterator(chunk_size=bulk.CHUNK)
    outcome = bulk.run("delete", ids, by=request.user.get_username())
    return flash(request, outcome.message("Deleted"), extra=render.emptied("dead-confirm"))


# --- queues ---------------------------------------------------------------------------


@require_POST
@action_required("queue.add")
def queue_create(request: HttpRequest) -> HttpResponse:
    form = QueueCreateForm(request.POST)
    if not form.is_valid():
        html = render_to_string(
            "queues/partials/queue_create.html", {"create_form": form, "oob": True}, request
        )
        return flash(request, "The queue was not created; see the form.", "error", 400, extra=html)
    settings = {name: form.cleaned_data[name] for name in QueueCreateForm.Meta.fields if name != "name"}
    try:
        queue = lifecycle.create_queue(form.cleaned_data["name"], **settings)
    except (InvalidQueue, QueueConflict) as exc:
        return flash(request, str(exc), "error", 409 if isinstance(exc, QueueConflict) else 400)
    return redirect(reverse("console:queue", args=[queue.name]))


@require_POST
@action_required("queue.pause")
def queue_pause(request: HttpRequest, name: str) -> HttpResponse:
    return _set_paused(request, name, True)


@require_POST
@action_required("queue.pause")
def queue_resume(request: HttpRequest, name: str) -> HttpResponse:
    return _set_paused(request, name, False)


def _set_paused(request: HttpRequest, name: str, paused: bool) -> HttpResponse:
    try:
        queue = lifecycle.set_paused(name, paused)
    except InvalidJob:  # no such queue
        return flash(request, f"Queue {name} does not exist.", "error", 404)
    state = render.queue_paused(queue, allowed_actions(request.user))
    return flash(request, f"Queue {name} {'paused' if paused else 'resumed'}.", extra=state)


@require_POST
@action_required("queue.change")
def queue_settings(request: HttpRequest, name: str) -> HttpResponse:
    queue = get_object_or_404(Queue, name=name)
    form = QueueSettingsForm(request.POST, instance=queue)
    ok = form.is_valid()
    if ok:
        changes = {field: form.cleaned_data[field] for field in form.changed_data}
        queue = lifecycle.update_queue(name, **changes)
    html = render_to_string(
        "queues/partials/queue_settings.html", {"queue": queue, "settings_form": form, "oob": True}, request
    )
    if not ok:
        return flash(request, "Nothing saved; see the form.", "error", 400, extra=html)
    return flash(request, f"Settings of {name} saved.", extra=html)


@require_GET
@action_required("queue.purge")
def queue_purge_confirm(request: HttpRequest, name: str) -> HttpResponse:
    queue = get_object_or_404(Queue, name=name)
    waiting = counts.count(queue.jobs.filter(status__in=TRANSITIONS["purge"]))
    return HttpResponse(
        render_to_string("queues/partials/purge_confirm.html", {"queue": queue, "count": waiting}, request)
    )


@require_POST
@action_required("queue.purge")
def queue_purge(request: HttpRequest, name: str) -> HttpResponse:
    get_object_or_404(Queue, name=name)
    purged = lifecycle.purge_queue(name)
    return flash(
        request,
        f"Purged {purged} waiting job{'s' if purged != 1 else ''} from {name}.",
        extra=render.emptied("purge-confirm"),
    )


@require_POST
@action_required("queue.delete")
def queue_delete(request: HttpRequest, name: str) -> HttpResponse:
    get_object_or_404(Queue, name=name)
    try:
        lifecycle.delete_queue(name)
    except QueueConflict as exc:
        return flash(request, str(exc), "error", 409)
    return redirect(reverse("console:overview"))
