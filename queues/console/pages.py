"""The console's pages (GET). Each renders one template; live parts come from fragments.py."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone

from .. import offload
from ..models import DeadLetter, Job, OffloadedPayload, Queue
from . import counts, fragments, queries
from .forms import SEARCH_WINDOW, DeadFilterForm, JobFilterForm, QueueCreateForm, QueueSettingsForm
from .paging import keyset
from .permissions import allowed_actions, operator_required


def _base(request: HttpRequest, socket: dict[str, Any], **context: Any) -> dict[str, Any]:
    """What every page needs: the socket URL of its live updates and what this user may do.

    The socket URL is reversed like any link, so it follows the prefix the console is mounted under.
    """
    namespace = request.resolver_match.namespace if request.resolver_match else None
    return {
        "socket_url": reverse("console:socket", current_app=namespace) + "?" + urlencode(socket),
        "allowed": allowed_actions(request.user),
        **context,
    }


def _newest_id(model: type[Job] | type[DeadLetter]) -> int:
    return model.objects.order_by("-id").values_list("id", flat=True).first() or 0


@operator_required
def overview(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    rows = queries.queue_rows(list(Queue.objects.all()), now)
    context = _base(
        request, {"page": "overview"}, create_form=QueueCreateForm(), **fragments.overview_context(rows, now)
    )
    return render(request, "queues/overview.html", context)


@operator_required
def queue_detail(request: HttpRequest, name: str) -> HttpResponse:
    queue = get_object_or_404(Queue, name=name)
    now = timezone.now()
    (row,) = queries.queue_rows([queue], now)
    context = _base(
        request,
        {"page": "queue", "name": queue.name},
        queue=queue,
        settings_form=QueueSettingsForm(instance=queue),
        **fragments.queue_context(row, now),
    )
    return render(request, "queues/queue.html", context)


@operator_required
def jobs(request: HttpRequest) -> HttpResponse:
    form = JobFilterForm(request.GET)
    matching = form.apply(Job.objects.select_related("queue"))
    page = keyset(matching, request.GET.get("before"), request.GET.get("after"))
    filters = form.filters()
    socket = {
        "page": "jobs",
        **filters,
        "top": _newest_id(Job),
        "rows": ",".join(str(j.id) for j in page.items),
    }
    context = _base(
        request,
        socket,
        form=form,
        page=page,
        filters=filters,
        query=urlencode(filters),
        total=counts.count(matching),
        first_page=not request.GET.get("before") and not request.GET.get("after"),
        search_window=f"{SEARCH_WINDOW:,}",
        can_act=bool(allowed_actions(request.user) & {"job.retry", "job.cancel", "job.delete"}),
    )
    return render(request, "queues/jobs.html", context)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@operator_required
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(Job.objects.select_related("queue"), id=job_id)
    attempts = list(job.attempt_history.all())
    allowed = allowed_actions(request.user)
    context = _base(
        request,
        {"page": "job", "id": job.id, "attempts": max([a.number for a in attempts], default=0)},
        job=job,
        attempts=attempts,
        args=_pretty(job.args),
        kwargs=_pretty(job.kwargs),
        meta=_pretty(job.meta) if job.meta else "",
        dead_letters=list(job.dead_letters.all()),
        job_id=job.id,
        status=job.status,
        **fragments.action_flags(job.status, allowed),
    )
    return render(request, "queues/job.html", context)


@operator_required
def job_payload(request: HttpRequest, job_id: int, part: str) -> HttpResponse:
    """A job's arguments (``{"args": [...], "kwargs": {...}}``) or result as a JSON download,
    read back from the storage when they were offloaded."""
    if part not in (OffloadedPayload.ARGUMENTS, OffloadedPayload.RESULT):
        raise Http404(f"A job has arguments and a result, not {part!r}.")
    job = get_object_or_404(Job, id=job_id)
    try:
        text = offload.content(job, part)
    except offload.PayloadUnavailable as exc:
        return HttpResponse(str(exc), status=503, content_type="text/plain; charset=utf-8")
    response = HttpResponse(text, content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="job-{job.id}-{part}.json"'
    return response


@operator_required
def dead_letters(request: HttpRequest) -> HttpResponse:
    form = DeadFilterForm(request.GET)
    matching = form.apply(DeadLetter.objects.filter(replayed_at=None).select_related("job"))
    page = keyset(matching, request.GET.get("before"), request.GET.get("after"))
    filters = form.filters()
    rows = ",".join(str(letter.job_id) for letter in page.items)
    context = _base(
        request,
        {"page": "dead", **filters, "top": _newest_id(DeadLetter), "rows": rows},
        form=form,
        page=page,
        filters=filters,
        query=urlencode(filters),
        groups=queries.dead_groups(),
        total=counts.count(matching),
        first_page=not request.GET.get("before") and not request.GET.get("after"),
        can_replay="dead.replay" in allowed_actions(request.user),
    )
    return render(request, "queues/dead.html", context)


@operator_required
def workers(request: HttpRequest) -> HttpResponse:
    context = _base(request, {"page": "workers"}, rows=queries.worker_rows())
    return render(request, "queues/workers.html", context)


def live_socket(request: HttpRequest) -> HttpResponse:
    """The console's WebSocket lives at this URL (queues.routing); a plain HTTP request is a mistake."""
    return HttpResponse(
        "This is the address of the console's WebSocket: open it with a WebSocket client.\n",
        status=400,
        content_type="text/plain",
    )
