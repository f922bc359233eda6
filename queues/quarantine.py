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
- any read that fails to decode (``Recovering`` querysets): it sweeps every job and
  every other table, then reads again.

Rows of the other tables (schedules, queues, workers, dead letters, tokens, stats) are
repaired in place the same way (``lifecycle.maintenance.repair_unreadable_rows``): an
unreadable time becomes now (or nothing where a row may have none), JSON of the wrong
type becomes empty. A schedule so repaired is also switched off, with the reason in its
``last_error``: its timetable is no longer what someone wrote, so it waits for a person.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC
from functools import cache
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


class RowShape(NamedTuple):
    """The columns of one model, other than a job, that a stored value can make unreadable:
    its times, and its JSON columns whose default says which JSON type they hold."""

    model: type[models.Model]
    times: tuple[str, ...]
    nullable: frozenset[str]
    json: dict[str, str]  # column -> the JSON type it must hold

    @classmethod
    def of(cls, model: type[models.Model]) -> RowShape:
        fields = model._meta.concrete_fields
        times = [f for f in fields if isinstance(f, models.DateTimeField)]
        json = {
            f.column: kind
            for f in fields
            if isinstance(f, models.JSONField) and (kind := _JSON_KIND.get(type(f.get_default())))
        }
        return cls(model, tuple(f.column for f in times), frozenset(f.column for f in times if f.null), json)

    def problems(self, row: tuple) -> dict[str, str]:
        """Why each value of a row ``Engine.suspect_rows`` returned cannot be read ({column: why})."""
        found = {}
        n = len(self.times)
        for column, text in zip(self.times, row[1 : 1 + n], strict=True):
            if why := time_problem(text, nullable=column in self.nullable):
                found[column] = why
        for (column, expected), json_type in zip(self.json.items(), row[1 + n :], strict=True):
            if why := json_problem(json_type, expected, None):
                found[column] = why
        return found


_JSON_KIND = {list: "array", dict: "object"}


def _no_sweep() -> int:
    return 0


sweeper: Callable[[], int] = _no_sweep
"""Quarantines every unreadable row and says how many: ``lifecycle.maintenance.sweep_every_table``,
set by the app's ``ready``. The models read through this module, which therefore sits
below the lifecycle and cannot import it."""


def recovering(fetch: Callable[[], Any]) -> Any:
    """Run a read of rows; if a row fails to decode, quarantine what cannot be read, read again."""
    try:
        return fetch()
    except DECODE_ERRORS:
        if not sweeper():
            raise
    return fetch()


class Recovering(models.QuerySet):
    """A queryset whose reads survive unreadable rows (see ``recovering``): every model of the
    app reads through one."""

    def _fetch_all(self) -> None:
        # Django's one place where a queryset reads rows (get, first, iteration, len...).
        recovering(super()._fetch_all)


@cache
def _required_times(model: type[models.Model]) -> tuple[str, ...]:
    return tuple(
        f.attname for f in model._meta.concrete_fields if isinstance(f, models.DateTimeField) and not f.null
    )


def check_read(row: models.Model) -> None:
    """Raise Unreadable for a row read with a value nothing downstream can use, which the
    database hands back without failing: a time that cannot be NULL read as None (SQLite
    reads text that is no time so) and, for a job, a status that is none. Deferred fields
    are not looked at."""
    loaded = row.__dict__
    for name in _required_times(type(row)):
        if name in loaded and loaded[name] is None:
            raise Unreadable(f"{row._meta.model_name} {row.pk}: {name} is not a readable time")
    if row._meta.model_name == "job" and "status" in loaded and loaded["status"] not in Status.values:
        raise Unreadable(f"job {row.pk}: {loaded['status']!r} is not a job status")


class ReadChecked(models.Model):
    """A model whose rows are checked as they are read (``check_read``), so that an
    unreadable one fails the read, and ``Recovering`` repairs it, before any page uses it."""

    # Every model reads through Recovering: this default, or a queryset of its own derived
    # from it (JobQuerySet, WorkerQuerySet).
    objects = Recovering.as_manager()

    class Meta:
        abstract = True

    @classmethod
    def from_db(cls, db: str | None, field_names: Any, values: Any, **kwargs: Any) -> models.Model:
        # Django 6.1 passes fetch_mode; 5.2 passes nothing more.
        instance = super().from_db(db, field_names, values, **kwargs)
        check_read(instance)
        return instance
