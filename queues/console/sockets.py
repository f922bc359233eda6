"""What one open socket remembers about its page, and how it turns tick events into fragments.

No database access here: the poller already read everything once for all sockets;
a page only filters that against its own filters, visible rows and selections.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from django.template.loader import render_to_string

from ..models import QUEUE_NAME_VALIDATOR
from . import fragments

MAX_ROWS = 200


class SocketPage:
    """A page that only receives whole fragments (overview, queue, workers)."""

    def __init__(self, topics: list[str], rows: set[int] | None = None) -> None:
        self.topics = topics
        self.rows = rows or set()

    def jobs_changed(self, event: Mapping[str, Any]) -> str:
        """Status cells of the rows this page shows; lists add their "N new" control."""
        return "".join(fragments.job_status(job) for job in event["jobs"] if job["id"] in self.rows)

    def job_changed(self, event: Mapping[str, Any]) -> str:
        return ""

    def dead_changed(self, event: Mapping[str, Any]) -> str:
        return ""


class NewRows:
    """Counts rows that arrived after the page was rendered, each once, for "N new — show"."""

    def __init__(self, element_id: str, top: int, filters: dict[str, str]) -> None:
        self.element_id = element_id
        self.top = top
        self.filters = filters
        self.counted: set[int] = set()

    def add(self, row_id: int) -> bool:
        if row_id <= self.top or row_id in self.counted:
            return False
        self.counted.add(row_id)
        return True

    def render(self) -> str:
        return render_to_string(
            "queues/partials/new_rows.html",
            {"element_id": self.element_id, "count": len(self.counted), "query": urlencode(self.filters)},
        )


class JobsPage(SocketPage):
    def __init__(self, filters: dict[str, str], top: int, rows: set[int]) -> None:
        super().__init__(["jobs"], rows)
        self.filters = filters
        self.new = NewRows("jobs-new", top, filters)

    def matches(self, job: Mapping[str, Any]) -> bool:
        f = self.filters
        if any(f.get(key) and f[key] != job[key] for key in ("queue", "status", "task")):
            return False
        text = f.get("q", "").strip().lower()
        if not text:
            return True
        if text.startswith("#") and text[1:].isdigit():
            return int(text[1:]) == job["id"]
        return text == str(job["id"]) or text in job["task"].lower() or text in job["args"].lower()

    def jobs_changed(self, event: Mapping[str, Any]) -> str:
        cells = super().jobs_changed(event)
        grew = [job["id"] for job in event["jobs"] if job["id"] not in self.rows and self.matches(job)]
        if any([self.new.add(job_id) for job_id in grew]):
            cells += self.new.render()
        return cells


class JobPage(SocketPage):
    def __init__(self, job_id: int, attempts: int, allowed: frozenset[str]) -> None:
        super().__init__([f"job.{job_id}"])
        self.job_id = job_id
        self.attempts_shown = attempts
        self.allowed = allowed

    def job_changed(self, event: Mapping[str, Any]) -> str:
        """The live block, this user's buttons, and only the attempts not on the page yet
        (so a traceback someone opened stays open)."""
        new = [html for number, html in event["attempts"] if number > self.attempts_shown]
        self.attempts_shown = max([self.attempts_shown, *(number for number, _ in event["attempts"])])
        parts = [event["live"], fragments.job_actions(self.job_id, event["status"], self.allowed)]
        if new:
            parts.append(f'<div hx-swap-oob="beforeend:#attempts">{"".join(new)}</div>')
            parts.append(
                render_to_string("queues/partials/attempt_count.html", {"count": self.attempts_shown})
            )
        return "".join(parts)


class DeadPage(SocketPage):
    def __init__(self, filters: dict[str, str], top: int, rows: set[int]) -> None:
        super().__init__(["dead", "jobs"], rows)
        self.filters = filters
        self.new = NewRows("dead-new", top, filters)

    def matches(self, letter: Mapping[str, Any]) -> bool:
        keys = {
            "queue": "queue_name",
            "task": "task_path",
            "error_type": "error_type",
            "error_message": "error_message",
        }
        return all(letter[field] == self.filters[key] for key, field in keys.items() if self.filters.get(key))

    def dead_changed(self, event: Mapping[str, Any]) -> str:
        html = event["html"]
        if any([self.new.add(letter["id"]) for letter in event["letters"] if self.matches(letter)]):
            html += self.new.render()
        return html


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value or default)
    except ValueError:
        return default


def _ids(value: str | None) -> set[int]:
    return {int(part) for part in (value or "").split(",") if part.isdigit()}


LIST_FILTERS = {
    "jobs": ("queue", "status", "task", "q"),
    "dead": ("queue", "task", "error_type", "error_message"),
}


def page_for(query: Mapping[str, str], allowed: frozenset[str]) -> SocketPage | None:
    """The page a socket URL describes, or None if it names nothing we know."""
    kind = query.get("page", "")
    rows = set(list(_ids(query.get("rows")))[:MAX_ROWS])
    if kind in ("overview", "workers"):
        return SocketPage([kind])
    if kind == "queue" and QUEUE_NAME_VALIDATOR.regex.match(query.get("name", "")):
        return SocketPage([f"queue.{query['name']}"])
    if kind == "job" and _int(query.get("id")) > 0:
        return JobPage(_int(query.get("id")), _int(query.get("attempts")), allowed)
    if kind in LIST_FILTERS:
        filters = {key: query[key] for key in LIST_FILTERS[kind] if query.get(key)}
        page_class = JobsPage if kind == "jobs" else DeadPage
        return page_class(filters, _int(query.get("top")), rows)
    return None
