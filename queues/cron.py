"""Cron arithmetic: parse a timetable, check it, and find its next due time. Pure.

5 fields (``*/15 9-17 * * 1-5``) or an alias (``@hourly``, ``@daily``...), evaluated in
an IANA time zone with its daylight-saving rules. Models, forms, the API and the
scheduler all check timetables here, so a schedule is refused the same way at
every door.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError
from django.core.exceptions import ValidationError
from django.utils import timezone

from .exceptions import InvalidJob

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def _expression(cron: str) -> str:
    """The 5-field form of ``cron``, or a ValidationError saying what is wrong with it."""
    text = " ".join(str(cron).split())
    if text.startswith("@"):
        if text.lower() not in ALIASES:
            raise ValidationError(
                {"cron": f"Unknown alias {text!r}; use one of {', '.join(ALIASES)} or 5 fields."}
            )
        return ALIASES[text.lower()]
    fields = text.split(" ") if text else []
    if len(fields) != 5:
        count = len(fields)
        raise ValidationError(
            {"cron": f"A cron expression has 5 fields (minute hour day month weekday); {cron!r} has {count}."}
        )
    try:
        # Asking for a due time also refuses expressions that never come due (0 0 31 2 *).
        croniter(text, datetime(2000, 1, 1)).get_next(datetime)
    except (CroniterError, ValueError, KeyError) as exc:
        raise ValidationError({"cron": f"{cron!r} is not a valid cron expression: {exc}"}) from None
    return text


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(
            {"time_zone": f"Unknown time zone {name!r} (use an IANA name such as Europe/Paris)."}
        ) from None


def validate_timing(cron: str, time_zone: str) -> None:
    """Raise a ValidationError naming the field and the reason if either value is bad."""
    errors: dict[str, list[str]] = {}
    for check, value in ((_expression, cron), (_zone, time_zone)):
        try:
            check(value)
        except ValidationError as exc:
            errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)


def next_due(cron: str, time_zone: str, after: datetime) -> datetime:
    """The first due time strictly after ``after``, in UTC, following the zone's DST rules."""
    local = after.astimezone(_zone(time_zone))
    return croniter(_expression(cron), local).get_next(datetime).astimezone(UTC)


def plan_schedule(cron: str, time_zone: str) -> datetime:
    """The next due time of a cron expression, or InvalidJob naming the bad field.

    Checks more than the syntax: "0 0 31 2 *" parses but never comes due.
    """
    try:
        validate_timing(cron, time_zone)
        return next_due(cron, time_zone, timezone.now())
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise InvalidJob(" ".join(messages), field) from None
    except CroniterError:
        raise InvalidJob(f"The cron expression {cron!r} never comes due.", "cron") from None
