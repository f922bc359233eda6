"""Cron arithmetic (queues.cron): pure, no database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from queues import cron
from queues.exceptions import InvalidJob


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("@hourly", datetime(2026, 1, 1, 10, 15, tzinfo=UTC), datetime(2026, 1, 1, 11, 0, tzinfo=UTC)),
        ("@daily", datetime(2026, 1, 1, 10, 15, tzinfo=UTC), datetime(2026, 1, 2, 0, 0, tzinfo=UTC)),
        ("*/15 * * * *", datetime(2026, 1, 1, 10, 15, tzinfo=UTC), datetime(2026, 1, 1, 10, 30, tzinfo=UTC)),
    ],
)
def test_next_due_follows_the_expression_and_its_aliases(expression, after, expected):
    assert cron.next_due(expression, "UTC", after) == expected


def test_next_due_follows_the_time_zone_across_a_dst_change():
    # 09:00 in New York is 14:00 UTC in winter and 13:00 UTC after the clocks go forward.
    after = datetime(2026, 3, 7, 15, 0, tzinfo=UTC)
    first = cron.next_due("0 9 * * *", "America/New_York", after)
    second = cron.next_due("0 9 * * *", "America/New_York", first)
    assert (first, second) == (
        datetime(2026, 3, 8, 13, 0, tzinfo=UTC),
        datetime(2026, 3, 9, 13, 0, tzinfo=UTC),
    )


def test_validate_timing_names_every_bad_field():
    with pytest.raises(ValidationError) as info:
        cron.validate_timing("* * *", "Mars/Olympus")
    assert set(info.value.message_dict) == {"cron", "time_zone"}


def test_planning_an_expression_that_never_comes_due_names_the_cron_field():
    with pytest.raises(InvalidJob, match="is not a valid cron expression") as info:
        cron.plan_schedule("0 0 31 2 *", "UTC")
    assert info.value.field == "cron"
