"""The console's pages (GET). Each renders one template; live parts come from render.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone

from .. import counts
from ..encryption import shown_arguments
from ..exceptions import InvalidJob
from ..filters import SEARCH_WINDOW, DeadLetterFilter, JobFilter, queue_choices, task_choices
from ..models import DeadLetter, Job, Queue
from ..rules import sees_payloads
from ..states import Status
from . import queries
from .events import OverviewUpdate, QueueUpdate
from .forms import QueueCreateForm, QueueSettingsForm
from .paging import Page
from .permissions import allowed_actions, operator_required
from .render import action_flags, overview_context, queue_context


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


@operator_required
def overview(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    rows = queries.queue_summaries(list(Queue.objects.all()), now)
    live = overview_context(OverviewUpdate.read(rows, now))
    context = _base(request, {"page": "overview"}, create_form=QueueCreateForm(), **live)
    return render(request, "queues/overview.html", context)


@operator_required
def queue_detail(request: HttpRequest, name: str) -> HttpResponse:
    queue = get_object_or_404(Queue, name=name)
    now = timezone.now()
    (row,) = queries.queue_summaries([queue], now)
    context = _base(
        request,
        {"page": "queue", "name": queue.name},
        queue=queue,
        settings_form=QueueSettingsForm(instance=queue),
        **queue_context(QueueUpdate.read(row, now)),
    )
    return render(request, "queues/queue.html", context)


def _first_page(request: HttpRequest) -> bool:
    return not request.GET.get("before") and not request.GET.get("after")


def _list_socket(
    page: str, filters: dict[str, str], request: HttpRequest, ids: list[int], as_of: int
) -> dict[str, Any]:
    """A list's socket address: its filters, the range of ids it drew and, on the first
    page, the newest id when it was drawn (newer matching rows are counted as new)."""
    address: dict[str, Any] = {"page": page, **filters}
    if ids:
        address.update(oldest=min(ids), newest=max(ids))
    if _first_page(request):
        address["as_of"] = as_of
    return address


@dataclass(frozen=True)
class ListKind:
    """What differs between the two lists (jobs, dead letters); ``_list_context`` does the rest."""

    page: str
    model: type[Job] | type[DeadLetter]
    filter: type[JobFilter] | type[DeadLetterFilter]
    rows: Callable[..., Page]  # queries.job_list or queries.dead_letter_list
    job_id: Callable[[Any], int]  # the job a row shows the status of


JOBS = ListKind("jobs", Job, JobFilter, queries.job_list, attrgetter("id"))
DEAD_LETTERS = ListKind("dead", DeadLetter, DeadLetterFilter, queries.dead_letter_list, attrgetter("job_id"))


def _list_context(request: HttpRequest, kind: ListKind) -> dict[str, Any]:
    """A list page: its filter (none, with the reason shown, when the query string cannot
    be one), its rows as of the newest id now, the total matching and its socket."""
    try:
        wanted, error = kind.filter.parse(request.GET), ""
    except InvalidJob as exc:
        wanted, error = kind.filter(), str(exc)
    as_of = queries.newest_id(kind.model)
    page = kind.rows(wanted, as_of, request.GET.get("before"), request.GET.get("after"))
    filters = wanted.query()
    ids = [kind.job_id(row) for row in page.items]
    return _base(
        request,
        _list_socket(kind.page, filters, request, ids, as_of),
        filter=wanted,
        filter_error=error,
        queue_choices=queue_choices(),
        page=page,
        filters=filters,
        query=urlencode(filters),
        total=counts.count(wanted.queryset(kind.model.objects.all())),
        first_page=_first_page(request),
    )


@operator_required
def jobs(request: HttpRequest) -> HttpResponse:
    context = _list_context(request, JOBS)
    context.update(
        status_choices=Status.choices,
        task_choices=task_choices(),
        search_window=f"{SEARCH_WINDOW:,}",
        search_note=context["filter"].search_note(Job.objects.all()),
        can_act=bool(allowed_actions(request.user) & {"job.retry", "job.cancel", "job.delete"}),
    )
    return render(request, "queues/jobs.html", context)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@operator_required
def job_page(request: HttpRequest, job_id: int) -> HttpResponse:
    job = get_object_or_404(Job.objects.select_related("queue"), id=job_id)
    attempts = list(job.attempt_history.all())
    allowed = allowed_actions(request.user)
    reveal = sees_payloads(request.user)
    args, kwargs = shown_arguments(job.args, job.kwargs, reveal)
    context = _base(
        request,
        {"page": "job", "id": job.id, "attempts": max([a.number for a in attempts], default=0)},
        job=job,
        attempts=attempts,
        args=args if isinstance(args, str) else _pretty(args),
        kwargs=kwargs if isinstance(kwargs, str) else _pretty(kwargs),
        reveal=reveal,
        meta=_pretty(job.meta) if job.meta else "",
        dead_letters=list(job.dead_letters.all()),
        job_id=job.id,
        status=job.status,
        **action_flags(job.status, allowed),
    )
    return render(request, "queues/job.html", context)


@operator_required
def dead_letters(request: HttpRequest) -> HttpResponse:
    context = _list_context(request, DEAD_LETTERS)
    context.update(
        groups=queries.dead_groups(),
        can_replay="dead.replay" in allowed_actions(request.user),
        reveal=sees_payloads(request.user),
    )
    return render(request, "queues/dead.html", context)


@operator_required
def workers(request: HttpRequest) -> HttpResponse:
    context = _base(request, {"page": "workers"}, rows=queries.worker_summaries())
    return render(request, "queues/workers.html", context)


def live_socket(request: HttpRequest) -> HttpResponse:
    """The console's WebSocket lives at this URL (console/routing.py); a plain HTTP request is a mistake."""
    return HttpResponse(
        "This is the address of the console's WebSocket: open it with a WebSocket client.\n",
        status=400,
        content_type="text/plain",
    )
