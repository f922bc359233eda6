"""What one open socket watches: its page, read from the socket's address, and which
parts of each update are that page's to show.

The address describes the page as its own URL does (its kind, its filters) plus, for a
list, the range of ids it drew (``oldest``..``newest``) and, on a list's first page,
``as_of``: the newest id when the page was drawn, above which rows are new. Never the
rows themselves: a list sends the status cells of changed jobs in its range that its
filter's lasting part matches, and the page puts in place those it shows (console.js).
A watch reads the database only when its socket opens, to catch up with what changed
since the page was drawn; after that it only compares updates with its page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from ..exceptions import InvalidJob
from ..filters import DeadLetterFilter, JobFilter
from ..models import QUEUE_NAME_VALIDATOR, Job
from . import render
from .events import (
    DEAD,
    JOBS,
    OVERVIEW,
    WORKERS,
    DeadLettersUpdate,
    JobsUpdate,
    JobUpdate,
    Topic,
    Update,
    job_topic,
    queue_topic,
)


class Watch:
    """A page whose live parts are whole fragments, the same for everyone watching them
    (the overview, a queue, the workers)."""

    def __init__(self, topics: frozenset[Topic]) -> None:
        self.topics = topics

    def start(self) -> str:
        """What the socket gets before its first update (runs in the poller's thread)."""
        return ""

    def show(self, update: Update, shared: str, reveal: bool = False) -> str:
        """This page's part of ``update``; ``shared`` is its common fragments, or "" when the
        socket already has them. ``reveal``: whether this socket's user may see encrypted
        payloads in the clear (``shared`` was rendered for it)."""
        return shared


class NewRows:
    """Matching rows that arrived after the page was drawn, each counted once, for "N new —
    show" (only a list's first page has that link: without ``as_of`` nothing is counted)."""

    def __init__(self, element_id: str, as_of: int | None, query: dict[str, str]) -> None:
        self.element_id = element_id
        self.as_of = as_of
        self.query = urlencode(query)
        self.counted: set[int] = set()

    def count(self, row_ids: list[int]) -> str:
        if self.as_of is None:
            return ""
        new = {row_id for row_id in row_ids if row_id > self.as_of} - self.counted
        if not new:
            return ""
        self.counted |= new
        return render.new_rows(self.element_id, len(self.counted), self.query)


@dataclass(frozen=True)
class IdRange:
    """The ids a list page drew, from its oldest row to its newest (empty: no rows)."""

    oldest: int = 0
    newest: int = 0

    def __contains__(self, row_id: int) -> bool:
        return self.oldest <= row_id <= self.newest

    def __bool__(self) -> bool:
        return 0 < self.oldest <= self.newest


CATCH_UP_ROWS = 500
"""At most this many rows of a list's range get their status sent when its socket opens."""


def _in_range(wanted: JobFilter, ids: IdRange) -> list[Job]:
    """Jobs of a list's range that its filter's lasting part matches, as they are now."""
    if not ids:
        return []
    jobs = wanted.queryset(Job.objects.filter(id__gte=ids.oldest, id__lte=ids.newest))
    return list(jobs.order_by("-id")[:CATCH_UP_ROWS])


class JobListWatch(Watch):
    def __init__(self, wanted: JobFilter, ids: IdRange, as_of: int | None) -> None:
        super().__init__(frozenset({JOBS}))
        self.wanted = wanted
        self.lasting = wanted.lasting()
        self.ids = ids
        self.new = NewRows("jobs-new", as_of, wanted.query())

    def start(self) -> str:
        return render.status_cells(_in_range(self.lasting, self.ids))

    def show(self, update: Update, shared: str, reveal: bool = False) -> str:
        if not isinstance(update, JobsUpdate):
            return ""
        cells = render.status_cells(
            job for job in update.jobs if job.id in self.ids and self.lasting.matches(job)
        )
        return cells + self.new.count([job.id for job in update.jobs if self.wanted.matches(job)])


class DeadLetterListWatch(Watch):
    """The dead-letter list: its rows' job status (a replayed job comes back to life) and
    the groups by error, plus new letters matching its filter. Its range is of job ids."""

    def __init__(self, wanted: DeadLetterFilter, job_ids: IdRange, as_of: int | None) -> None:
        super().__init__(frozenset({DEAD, JOBS}))
        self.wanted = wanted
        self.jobs = JobFilter(queue=wanted.queue, task=wanted.task)
        self.job_ids = job_ids
        self.new = NewRows("dead-new", as_of, wanted.query())

    def start(self) -> str:
        return render.status_cells(_in_range(self.jobs, self.job_ids))

    def show(self, update: Update, shared: str, reveal: bool = False) -> str:
        if isinstance(update, JobsUpdate):
            return render.status_cells(
                job for job in update.jobs if job.id in self.job_ids and self.jobs.matches(job)
            )
        if isinstance(update, DeadLettersUpdate):
            return shared + self.new.count(
                [letter.id for letter in update.new if self.wanted.matches(letter)]
            )
        return ""


class JobWatch(Watch):
    def __init__(self, job_id: int, attempts: int, allowed: frozenset[str]) -> None:
        super().__init__(frozenset({job_topic(job_id)}))
        self.job_id = job_id
        self.attempts_shown = attempts
        self.allowed = allowed

    def show(self, update: Update, shared: str, reveal: bool = False) -> str:
        """The live block (``shared``), this user's buttons, and only the attempts not on the
        page yet (so a traceback someone opened stays open)."""
        if not isinstance(update, JobUpdate):
            return ""
        status = update.job.status if update.job is not None else ""
        html = shared + render.job_actions(self.job_id, status, self.allowed)
        new = [attempt for attempt in update.attempts if attempt.number > self.attempts_shown]
        if new:
            self.attempts_shown = max(attempt.number for attempt in new)
            html += render.new_attempts(new, self.attempts_shown, reveal)
        return html


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) <= 18 else 0


def _list(query: Mapping[str, str]) -> tuple[IdRange, int | None]:
    """A list's range and, on its first page, ``as_of``."""
    ids = IdRange(_int(query.get("oldest")), _int(query.get("newest")))
    return ids, (_int(query["as_of"]) if "as_of" in query else None)


def watch_for(query: Mapping[str, str], allowed: frozenset[str]) -> Watch | None:
    """The watch a socket address describes, or None if it names nothing we know."""
    kind = query.get("page", "")
    try:
        if kind == "overview":
            return Watch(frozenset({OVERVIEW}))
        if kind == "workers":
            return Watch(frozenset({WORKERS}))
        if kind == "queue" and QUEUE_NAME_VALIDATOR.regex.fullmatch(query.get("name", "")):
            return Watch(frozenset({queue_topic(query["name"])}))
        if kind == "job" and _int(query.get("id")) > 0:
            return JobWatch(_int(query["id"]), _int(query.get("attempts")), allowed)
        if kind == "jobs":
            return JobListWatch(JobFilter.parse(query), *_list(query))
        if kind == "dead":
            return DeadLetterListWatch(DeadLetterFilter.parse(query), *_list(query))
    except InvalidJob:  # a filter no page would have written
        return None
    return None
