"""Rows nothing can read back are quarantined; they never stop a worker or a page.

Every door refuses values outside ``queues.bounds``, yet a row can still hold one
(written by hand in SQL, by an older version, by a bug): a time Python cannot
represent (year 0, year 10000, ``infinity``), text that is no time at all (SQLite),
arguments of the wrong JSON type, or JSON nested too deep to parse. Such a job is
quarantined (``lifecycle.maintenance.quarantine_job``): it dies with a dead letter that describes each
unreadable value, and the values are replaced with readable ones, so that every
page, endpoint and worker can read the row again.

Who quarantines:

- the claim, for the jobs it has just taken: a poisoned job never runs, and the
  claim decodes no column it does not need, so one bad row cannot break it;
- the worker's maintenance, over waiting and running jobs, every prune interval;
- any read of jobs that fails to decode (``Recovering`` querysets): it sweeps every
  job, then reads again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC
from typing import Any, NamedTuple

from django.db import DataError, models
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from . import bounds
from .states import Status

logger = logging.getLogger("queues.quarantine")
TIME_COLUMNS = ("run_after", "enqueued_at", "updated_at", "started_at", "finished_at", "lease_expires_at")
JSON_TYPES = {"args": "array", "kwargs": "object", "meta": "object", "result": None}
"""Each JSON column of a job and the JSON type it must hold (None: any)."""
SWEEP_LIMIT = 500  # jobs quarantined per sweep; a read that still fails sweeps again next time
NULLABLE_TIMES = frozenset({"started_at", "finished_at", "lease_expires_at"})
SHOWN = 200  # characters of an unreadable value kept in its dead letter


class Unreadable(ValueError):
    """A value read from the database that nothing downstream could use."""


# What a failed decode raises: psycopg's DataError for times out of Python's range, the
# SQLite backend's ValueError, TypeError or AttributeError (text that is no time reads as
# None), json's RecursionError, and Unreadable.
DECODE_ERRORS = (DataError, ValueError, TypeError, AttributeError, OverflowError, RecursionError)


def _shown(text: str) -> str:
    return repr(text if len(text) <= SHOWN else text[:SHOWN] + "…")


def time_problem(text: str | None, nullable: bool = False) -> str | None:
    """Why a stored time (as text) cannot be read, or None if it can."""
    if text is None:
        return None if nullable else "is empty"
    try:
        value = parse_datetime(text)  # what the SQLite backend reads times with
    except ValueError:
        value = None
    if value is not None and timezone.is_naive(value):
        value = value.replace(tzinfo=UTC)  # SQLite stores UTC without an offset
    if value is None or not bounds.READABLE_FROM <= value <= bounds.READABLE_UNTIL:
        return (
            f"holds {_shown(text)}, not a time Python can read "
            f"({bounds.READABLE_FROM.date()} to {bounds.READABLE_UNTIL.date()} UTC)"
        )
    return None


def json_problem(json_type: str | None, expected: str | None, deep_text: str | None) -> str | None:
    """Why a stored JSON value cannot be used, from its JSON type and (if it may nest too
    deep) its text; None if it can."""
    if expected is not None and json_type != expected:
        return f"holds JSON of type {json_type}, not an {expected}"
    if deep_text is not None and bounds.json_depth(deep_text) > bounds.READABLE_DEPTH:
        return f"nests more than {bounds.READABLE_DEPTH} levels deep: {_shown(deep_text)}"
    return None


def decode_claimed(args: Any, kwargs: Any, run_after: str) -> tuple[list, dict, dict[str, str]]:
    """A claimed job's arguments, decoded, and its unreadable values ({column: why})."""
    values: dict[str, Any] = {}
    problems = {}
    for column, text, kind in (("args", args, list), ("kwargs", kwargs, dict)):
        try:
            values[column] = json.loads(text) if isinstance(text, (str, bytes)) else text
        except (ValueError, RecursionError):
            values[column] = None
        if not isinstance(values[column], kind):
            problems[column] = (
                f"holds {_shown(str(text))}, not the JSON {kind.__name__} a task is called with"
            )
    if why := time_problem(run_after):
        problems["run_after"] = why
    return values["args"], values["kwargs"], problems


class Suspect(NamedTuple):
    """A job ``Engine.suspect_jobs`` found, as it found it."""

    id: int
    status: str
    attempts: int
    task_path: str
    queue_name: str
    times: tuple[str | None, ...]
    json: tuple[str | None, ...]  # per JSON column: its type, and its text if it may nest too deep

    @classmethod
    def from_row(cls, row: tuple) -> Suspect:
        n = len(TIME_COLUMNS)
        return cls(*row[:5], times=tuple(row[5 : 5 + n]), json=tuple(row[5 + n :]))

    def problems(self) -> dict[str, str]:
        found = {}
        if self.status not in Status.values:
            found["status"] = f"holds {_shown(self.status)}, not a job status"
        for column, text in zip(TIME_COLUMNS, self.times, strict=True):
            if why := time_problem(text, nullable=column in NULLABLE_TIMES):
                found[column] = why
        for i, (column, expected) in enumerate(JSON_TYPES.items()):
            if why := json_problem(self.json[2 * i], expected, self.json[2 * i + 1]):
                found[column] = why
        return found


def _no_sweep() -> int:
    return 0


sweeper: Callable[[], int] = _no_sweep
"""Quarantines every unreadable job and says how many: ``lifecycle.maintenance.sweep_unreadable``,
set by the app's ``ready``. The models read through this module, which therefore sits
below the lifecycle and cannot import it."""


def recovering(fetch: Callable[[], Any]) -> Any:
    """Run a read of jobs; if a row fails to decode, quarantine what cannot be read, read again."""
    try:
        return fetch()
    except DECODE_ERRORS:
        if not sweeper():
            raise
    return fetch()


class Recovering(models.QuerySet):
    """A queryset whose reads survive unreadable job rows (see ``recovering``)."""

    def _fetch_all(self) -> None:
        # Django's one place where a queryset reads rows (get, first, iteration, len...).
        recovering(super()._fetch_all)


def check_read(job: models.Model) -> None:
    """Raise Unreadable for a job read with values nothing downstream can use, which the
    database hands back without failing: a time that cannot be NULL read as None
    (SQLite reads text that is no time so) and a status that is none. Deferred fields
    are not looked at."""
    loaded = job.__dict__
    for name in ("run_after", "enqueued_at", "updated_at"):
        if name in loaded and loaded[name] is None:
            raise Unreadable(f"job {job.pk}: {name} is not a readable time")
    if "status" in loaded and loaded["status"] not in Status.values:
        raise Unreadable(f"job {job.pk}: {loaded['status']!r} is not a job status")
