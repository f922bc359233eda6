"""The limits of every value a door accepts, defined once.

The lifecycle, the REST API (its schemas and their OpenAPI document), the admin, the
console, taskctl and the Tasks backend all take their limits from here, so that a
value one door accepts is never refused, or misread, by another. A value past a
limit is refused with ``InvalidJob`` naming the field, the limit and the value.

Times matter most: a timestamp Python cannot read back (year 0, year 10000) once
stopped every worker that claimed it. Every time a job may carry therefore lies
between ``EARLIEST_RUN`` and ``MAX_DELAY`` from now, far inside what every
database, Python and every time zone can represent.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from .exceptions import InvalidJob, PayloadTooLarge

MAX_ATTEMPTS = 1000
MAX_TIMEOUT = 7 * 86400  # seconds one attempt may run
MAX_DELAY = 366 * 86400  # seconds ahead a job may be planned: a year and a day
EARLIEST_RUN = datetime(2000, 1, 1, tzinfo=UTC)  # an earlier run_after is a mistake, not a plan
MAX_RETENTION = 3650 * 86400  # seconds finished jobs of a queue may be kept
MAX_CONCURRENCY = 100_000
MIN_RATE, MAX_RATE = 0.001, 1_000_000.0  # job starts per second
MAX_DEPTH = 32  # nesting of JSON arrays and objects in arguments, results and request bodies

# What a stored time must lie within for Python (and a conversion to any time zone) to
# read it back; values outside are quarantined (queues.quarantine), never parsed.
READABLE_FROM = datetime(1, 1, 2, tzinfo=UTC)
READABLE_UNTIL = datetime(9999, 12, 30, tzinfo=UTC)
READABLE_DEPTH = 200  # JSON nesting every reader (json, pydantic, templates) takes in its stride


def _show(limit: float) -> str:
    return f"{limit:,.0f}" if float(limit).is_integer() else f"{limit:g}"


def count(value: object, field: str, maximum: int, minimum: int = 1) -> int:
    """A whole number in minimum..maximum. True and False are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise InvalidJob(
            f"{field} must be a whole number from {_show(minimum)} to {_show(maximum)}, not {value!r}.", field
        )
    return value


def number(value: object, field: str, minimum: float, maximum: float, unit: str = "") -> float:
    """A finite number in minimum..maximum (``unit`` names what it counts, for the message)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not minimum <= value <= maximum
    ):
        raise InvalidJob(
            f"{field} must be a number{unit} from {_show(minimum)} to {_show(maximum)}, not {value!r}.", field
        )
    return float(value)


def seconds(value: object, field: str, maximum: float, minimum: float = 0.0) -> float:
    return number(value, field, minimum, maximum, " of seconds")


def delay(value: object, field: str = "delay") -> timedelta:
    """A delay from now, as a timedelta that no addition can overflow."""
    return timedelta(seconds=seconds(value, field, MAX_DELAY))


def run_after(value: object, now: datetime | None = None, field: str = "run_after") -> datetime:
    """A time a job may run after: aware, from EARLIEST_RUN to MAX_DELAY after ``now``."""
    if not isinstance(value, datetime):
        raise InvalidJob(f"{field} must be a datetime, not {type(value).__name__}.", field)
    if settings.USE_TZ and timezone.is_naive(value):
        raise InvalidJob(f"{field} must be a timezone-aware datetime.", field)
    now = now or timezone.now()
    earliest, latest = EARLIEST_RUN, now + timedelta(seconds=MAX_DELAY)
    if timezone.is_naive(value):  # USE_TZ off: naive times are in the default zone
        earliest, latest = timezone.make_naive(earliest), timezone.make_naive(latest)
    if not earliest <= value <= latest:
        raise InvalidJob(
            f"{field} {value.isoformat()} is out of range: a job runs after a time from "
            f"{EARLIEST_RUN:%Y-%m-%d} to {MAX_DELAY // 86400} days from now.",
            field,
        )
    return value


_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def json_depth(text: str | bytes) -> int:
    """How deeply the arrays and objects of JSON text nest, read without parsing it.

    Counting first lets a door refuse a body nested 50,000 deep with a clear error
    before any parser recurses into it. Brackets inside strings do not count.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    deepest = level = 0
    for token in _BRACKETS.findall(text):
        if token in ("[", "{"):
            level += 1
            deepest = max(deepest, level)
        elif token in ("]", "}"):
            level -= 1
    return deepest


def too_deep(field: str) -> InvalidJob:
    return InvalidJob(f"{field} nests arrays and objects more than {MAX_DEPTH} levels deep.", field)


def shallow(text: str | bytes, field: str) -> None:
    """Refuse JSON text whose arrays and objects nest more than MAX_DEPTH deep."""
    if json_depth(text) > MAX_DEPTH:
        raise too_deep(field)


def payload_size(size: int, maximum: int, what: str, field: str) -> None:
    """Refuse a payload (arguments, or a result) of more than ``maximum`` bytes of JSON
    (``QUEUES_PAYLOAD_MAX_BYTES``).

    Offloading (``queues.offload``) takes large payloads off the jobs table, but no
    storage is bottomless: an absurd size is a mistake, refused before anything is stored.
    """
    if size > maximum:
        raise PayloadTooLarge(
            f"The {what} are {size:,} bytes of JSON; a job carries at most {maximum:,} "
            "(QUEUES_PAYLOAD_MAX_BYTES).",
            field,
        )


PRIORITY_NAMES = {"critical": 100, "high": 10, "normal": 0, "low": -10}


def parse_priority(value: int | str) -> int:
    """A priority as a number in -100..100 or one of the names critical/high/normal/low."""
    if isinstance(value, str):
        name = value.strip().lower()
        if name in PRIORITY_NAMES:
            return PRIORITY_NAMES[name]
        try:
            value = int(name)
        except ValueError:
            raise InvalidJob(
                f"Priority {value!r} is neither a number in -100..100 nor one of "
                f"{', '.join(PRIORITY_NAMES)}.",
                field="priority",
            ) from None
    if isinstance(value, bool) or not isinstance(value, int) or not -100 <= value <= 100:
        raise InvalidJob(f"Priority must be a whole number in -100..100, not {value!r}.", "priority")
    return value
