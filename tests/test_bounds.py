"""The limits every door shares (queues.bounds)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from queues import bounds
from queues.exceptions import InvalidJob

PLUS_14 = timezone(timedelta(hours=14))
MINUS_14 = timezone(timedelta(hours=-14))


def test_a_whole_number_is_never_true():
    with pytest.raises(InvalidJob, match="max_attempts must be a whole number from 1 to 1,000, not True"):
        bounds.count(True, "max_attempts", bounds.MAX_ATTEMPTS)


def test_a_whole_number_past_its_limit_is_refused_naming_the_field():
    with pytest.raises(InvalidJob) as error:
        bounds.count(bounds.MAX_TIMEOUT + 1, "timeout", bounds.MAX_TIMEOUT)
    assert error.value.field == "timeout"


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, bounds.MAX_DELAY + 1])
def test_a_delay_must_be_a_finite_number_of_seconds_within_the_limit(value):
    with pytest.raises(InvalidJob, match="delay must be a number of seconds from 0 to 31,622,400"):
        bounds.delay(value)


@pytest.mark.parametrize(
    "value",
    [
        datetime(1, 1, 1, tzinfo=PLUS_14),  # year 0 in UTC: PostgreSQL stores it, Python cannot read it
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=MINUS_14),  # year 10000 in UTC
        datetime(1999, 12, 31, 23, 59, tzinfo=UTC),
    ],
)
def test_run_after_outside_the_allowed_range_is_refused(value):
    with pytest.raises(InvalidJob, match="out of range: a job runs after a time from 2000-01-01 to 366 days"):
        bounds.run_after(value)


def test_run_after_more_than_a_year_and_a_day_ahead_is_refused():
    with pytest.raises(InvalidJob, match="out of range"):
        bounds.run_after(datetime.now(UTC) + timedelta(days=367))


def test_run_after_within_the_range_is_accepted_in_any_zone():
    value = datetime(2020, 1, 1, tzinfo=PLUS_14)
    assert bounds.run_after(value) is value


def test_run_after_must_carry_its_time_zone():
    with pytest.raises(InvalidJob, match="timezone-aware"):
        bounds.run_after(datetime(2030, 1, 1))


def test_json_depth_counts_arrays_and_objects_but_not_brackets_in_strings():
    assert bounds.json_depth(json.dumps({"a": [[1], "[[[{{{"], "b": {}})) == 3


def test_json_depth_reads_text_nested_50000_deep_without_recursing():
    assert bounds.json_depth("[" * 50_000 + "]" * 50_000) == 50_000
