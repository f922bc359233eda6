"""The console's one renderer: every fragment a page load or a live update shows.

Each top-level element of a fragment carries an ``id``; htmx swaps it out-of-band into
the page. Pages render the same templates with the same contexts, so a live update
looks exactly like a reload. All HTML comes from templates (autoescaped); nothing here
assembles markup from strings.

``reveal`` is the pages' own flag (``rules.sees_payloads``): whether the fragment goes to
viewers who may see encrypted payloads in the clear; the others get "🔒 encrypted" in
their place (``templatetags.console``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import singledispatch
from typing import Any

from django.template.loader import render_to_string

from ..models import Attempt, Job, Queue
from ..states import TRANSITIONS
from .events import DeadLettersUpdate, JobUpdate, OverviewUpdate, QueueUpdate, Update, WorkersUpdate

PAYLOAD_UPDATES = (JobUpdate, DeadLettersUpdate)
"""Updates whose fragments may hold encrypted payloads (results, error texts): rendered once
per ``reveal`` value among their viewers. Every other update is the same for all."""


def chart_json(series: dict[str, list]) -> str:
    return json.dumps(series, separators=(",", ":"))


def overview_context(update: OverviewUpdate) -> dict[str, Any]:
    return {
        "rows": update.rows,
        "now": update.now,
        "workers_alive": update.workers_alive,
        "unserved": [row for row in update.rows if row.backlog_unserved],
        "chart": chart_json(update.chart),
    }


def queue_context(update: QueueUpdate) -> dict[str, Any]:
    return {"row": update.row, "now": update.now, "chart": chart_json(update.chart)}


def shows_payloads(update: Update) -> bool:
    return isinstance(update, PAYLOAD_UPDATES)


@singledispatch
def shared(update: Update, reveal: bool = False) -> str:
    """The fragments of an update that are the same for every socket watching its topic with
    the same ``reveal`` (rendered once per tick and value however many sockets watch); "" when
    each socket renders its own."""
    return ""


@shared.register
def _(update: OverviewUpdate, reveal: bool = False) -> str:
    return render_to_string("queues/live/overview.html", overview_context(update))


@shared.register
def _(update: QueueUpdate, reveal: bool = False) -> str:
    return render_to_string("queues/live/queue.html", queue_context(update))


@shared.register
def _(update: WorkersUpdate, reveal: bool = False) -> str:
    return render_to_string("queues/live/workers.html", {"rows": update.rows})


@shared.register
def _(update: DeadLettersUpdate, reveal: bool = False) -> str:
    return render_to_string("queues/live/dead_groups.html", {"groups": update.groups, "reveal": reveal})


@shared.register
def _(update: JobUpdate, reveal: bool = False) -> str:
    return job_live(update.job, update.job_id, reveal)


def status_cells(jobs: Iterable[Any]) -> str:
    """Status cells for a list (of Jobs, or records with id, status and progress), together in
    one element: the page puts in place those of the rows it shows (console.js)."""
    jobs = list(jobs)
    return render_to_string("queues/live/status_cells.html", {"jobs": jobs}) if jobs else ""


def job_live(job: Job | None, job_id: int, reveal: bool = False) -> str:
    """The live block of a job page, or word that the job was deleted."""
    if job is None:
        return render_to_string("queues/live/job_gone.html", {"id": job_id})
    return render_to_string("queues/live/job.html", {"job": job, "reveal": reveal})


def new_attempts(attempts: list[Attempt], count: int, reveal: bool = False) -> str:
    """Attempts appended below those a job page shows (an open traceback stays open)."""
    return render_to_string(
        "queues/partials/new_attempts.html", {"attempts": attempts, "count": count, "reveal": reveal}
    )


def job_actions(job_id: int, status: str, allowed: frozenset[str]) -> str:
    """Retry/cancel/delete buttons; per socket because they depend on who is watching."""
    return render_to_string(
        "queues/partials/job_actions.html",
        {"job_id": job_id, "status": status, **action_flags(status, allowed)},
    )


def action_flags(status: str, allowed: frozenset[str]) -> dict[str, bool]:
    return {
        "can_retry": "job.retry" in allowed and status in TRANSITIONS["retry"],
        "can_cancel": "job.cancel" in allowed and status in TRANSITIONS["cancel"],
        "can_delete": "job.delete" in allowed and status in TRANSITIONS["delete"],
    }


def new_rows(element_id: str, count: int, query: str) -> str:
    """The "N new — show" link of a list."""
    return render_to_string(
        "queues/partials/new_rows.html", {"element_id": element_id, "count": count, "query": query}
    )


def emptied(element_id: str) -> str:
    """Empties an element of the page (a confirmation box once its action ran)."""
    return render_to_string("queues/partials/emptied.html", {"element_id": element_id})


def queue_paused(queue: Queue, allowed: frozenset[str]) -> str:
    """A queue page's pause/resume controls and its live badge, after one of them was used."""
    return render_to_string("queues/partials/queue_paused.html", {"queue": queue, "allowed": allowed})
