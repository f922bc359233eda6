"""Job counts: exact while small, estimated (and marked "~") when a scan would be too long."""

from __future__ import annotations

import pytest
from django.db import connection

from queues import counts, lifecycle, values
from queues.models import Job, Queue
from queues.states import Status

from .factories import make_job

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="planner estimates are PostgreSQL's"
)


@pytest.fixture
def small_cap(monkeypatch):
    """A cap of 5 rows, so that a handful of jobs behaves like a huge table."""
    monkeypatch.setattr(counts, "EXACT_UP_TO", 5)


def cancelled_jobs(n: int) -> None:
    lifecycle.enqueue_many([values.JobSpec(task_path="tests.tasks.noop") for _ in range(n)])
    Job.objects.update(status=Status.CANCELLED)


@pytest.mark.parametrize(("value", "text"), [(999, "999"), (12_345, "12.3k"), (1_200_000, "1.2M")])
def test_numbers_are_shortened_above_the_cap(value, text):
    assert counts.humanize(value) == text


def test_a_small_count_is_exact():
    make_job()
    make_job()
    assert counts.count(Job.objects.all()) == counts.Tally(2, True)


@postgres_only
def test_a_count_above_the_cap_is_an_estimate(small_cap):
    cancelled_jobs(8)
    found = counts.count(Job.objects.all())
    assert not found.exact and found.value >= 6 and str(found).startswith("~")


@postgres_only
def test_a_huge_finished_status_is_read_from_the_statistics(small_cap):
    cancelled_jobs(40)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE queues_job")
    queue = Queue.objects.get(name="default")
    found = counts.status_counts([queue], bounded=True)[queue.id]
    assert not found[Status.CANCELLED].exact and found[Status.QUEUED] == counts.Tally(0, True)


@pytest.mark.skipif("connection.vendor == 'postgresql'", reason="SQLite has no planner estimates")
def test_sqlite_counts_exactly_even_above_the_cap(small_cap):
    cancelled_jobs(8)
    assert counts.count(Job.objects.all()) == counts.Tally(8, True)


def test_exact_counts_name_every_status_of_every_queue():
    make_job()
    queue = Queue.objects.get(name="default")
    found = counts.as_numbers(counts.status_counts([queue])[queue.id])
    assert found == {**dict.fromkeys(Status.values, 0), "queued": 1}


def test_bounded_counts_agree_with_exact_ones_on_a_small_table():
    make_job()
    lifecycle.cancel(make_job().id)
    assert counts.status_counts(bounded=True) == counts.status_counts()
