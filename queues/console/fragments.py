"""HTML fragments that pages render on load and the poller pushes over the socket.

Each top-level element carries an ``id``; htmx swaps it out-of-band into the page.
The same templates serve both paths, so a live update looks exactly like a reload.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.template.loader import render_to_string

from ..models import Job
from ..states import TRANSITIONS
from . import queries

SEARCHABLE_ARGS = 300
"""Characters of a changed job's arguments sent to list sockets so that a search
filter can count it among the "new" rows without a query."""


def chart_json(series: dict[str, list]) -> str:
    return json.dumps(series, separators=(",", ":"))


def overview(rows: list[queries.QueueRow], now: datetime) -> str:
    return render_to_string("queues/live/overview.html", overview_context(rows, now))


def overview_context(rows: list[queries.QueueRow], now: datetime) -> dict[str, Any]:
    return {
        "rows": rows,
        "now": now,
        "workers_alive": len(queries.alive_workers()),
        "unserved": [row for row in rows if row.backlog_unserved],
        "chart": chart_json(queries.throughput(None, now)),
    }


def queue(row: queries.QueueRow, now: datetime) -> str:
    return render_to_string("queues/live/queue.html", queue_context(row, now))


def queue_context(row: queries.QueueRow, now: datetime) -> dict[str, Any]:
    return {"row": row, "now": now, "chart": chart_json(queries.throughput([row.queue.name], now))}


def workers(now: datetime) -> str:
    return render_to_string("queues/live/workers.html", {"rows": queries.worker_rows(now)})


def job_status(job: dict[str, Any] | Job) -> str:
    return render_to_string("queues/live/job_status.html", {"job": job})


def job_record(job: dict[str, Any], names: dict[int, str]) -> dict[str, Any]:
    """What a list socket needs to know about one changed job (plain JSON for any layer).

    No HTML: a socket renders the status cell only for rows its page shows.
    """
    return {
        "id": job["id"],
        "queue": names.get(job["queue_id"], ""),
        "task": job["task_path"],
        "status": job["status"],
        "progress": job["progress"],
        "args": json.dumps(job["args"])[:SEARCHABLE_ARGS],
    }


def job_detail(job: Job | None, job_id: int) -> dict[str, Any]:
    """The live part of a job page, and every attempt so far (sockets append the new ones)."""
    if job is None:
        return {
            "id": job_id,
            "status": "",
            "live": render_to_string("queues/live/job_gone.html", {"id": job_id}),
            "attempts": [],
        }
    attempts = [
        [attempt.number, render_to_string("queues/partials/attempt.html", {"attempt": attempt})]
        for attempt in job.attempt_history.all()
    ]
    return {
        "id": job.id,
        "status": job.status,
        "live": render_to_string("queues/live/job.html", {"job": job}),
        "attempts": attempts,
    }


def job_actions(job_id: int, status: str, allowed: frozenset[str]) -> str:
    """Retry/cancel buttons; rendered per socket because they depend on who is watching."""
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
