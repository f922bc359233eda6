"""One filter per list: the rows the database finds are the rows a pushed update matches."""

from __future__ import annotations

import pytest

from queues import lifecycle
from queues.console.events import JOBS
from queues.console.ticks import Tick
from queues.exceptions import InvalidJob
from queues.filters import DeadLetterFilter, JobFilter
from queues.models import DeadLetter, Job

from .factories import make_dead_job, make_job, make_queue

pytestmark = pytest.mark.django_db


def pushed(tick: Tick) -> list:
    """The records the console's poller pushes for the jobs changed since its last tick."""
    return next(update for update in tick.run({JOBS}, set()) if update.topic == JOBS).jobs


@pytest.mark.parametrize(
    "wanted",
    [
        JobFilter(q="INVOICE"),
        JobFilter(q="  invoice-4711 "),
        JobFilter(q="tests.TASKS.add"),
        JobFilter(q="#2"),
        JobFilter(queue="mail", status="queued"),
        JobFilter(task="tests.tasks.add"),
        JobFilter(q="nothing like it"),
    ],
)
def test_the_database_and_a_pushed_row_follow_the_same_rule(wanted):
    make_queue("mail")
    tick = Tick()
    tick.run({JOBS}, set())
    make_job(args=["invoice-4711"])
    make_job("tests.tasks.add", args=[1, 2], queue="mail")
    lifecycle.cancel(make_job(queue="mail", kwargs={}).id)
    found = set(wanted.queryset(Job.objects.all()).values_list("id", flat=True))
    assert {job.id for job in pushed(tick) if wanted.matches(job)} == found


def test_a_filter_lists_its_fields_for_links_and_sockets():
    assert JobFilter.parse({"queue": "mail", "status": "", "q": "x", "cursor": "9"}).query() == {
        "queue": "mail",
        "q": "x",
    }


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"status": "sleeping"}, "status"),
        ({"queue": "no spaces"}, "queue"),
        ({"task": "a" * 256}, "task"),
        ({"q": "nul\x00"}, "search"),
    ],
)
def test_a_job_filter_no_list_can_have_is_refused_naming_its_field(data, field):
    with pytest.raises(InvalidJob) as refused:
        JobFilter.parse(data)
    assert refused.value.field == field


def test_the_lasting_part_of_a_filter_leaves_out_the_status():
    assert JobFilter(queue="mail", status="queued").lasting() == JobFilter(queue="mail")


def test_dead_letters_match_the_same_way_in_the_database_and_in_memory():
    make_dead_job(queue="default")
    make_dead_job("tests.tasks.fail_with_key_error", queue="default")
    wanted = DeadLetterFilter(task="tests.tasks.fail_with_key_error", error_type="E")
    letters = list(DeadLetter.objects.all())
    found = set(wanted.queryset(DeadLetter.objects.all()).values_list("id", flat=True))
    assert len(found) == 1

    class Row:
        def __init__(self, letter: DeadLetter) -> None:
            self.queue, self.task = letter.queue_name, letter.task_path
            self.error_type, self.error_message = letter.error_type, letter.error_message

    assert {letter.id for letter in letters if wanted.matches(Row(letter))} == found


def test_replayed_dead_letters_are_listed_only_when_asked_for():
    job = make_dead_job()
    lifecycle.replay(job.id, by="tests")
    assert not DeadLetterFilter().queryset(DeadLetter.objects.all()).exists()
    assert DeadLetterFilter.parse({"replayed": "1"}).queryset(DeadLetter.objects.all()).exists()


def test_matching_dead_letters_give_their_dead_jobs():
    dead = make_dead_job()
    assert list(DeadLetterFilter(queue="default").jobs()) == [dead]
