"""A row nothing can read back never stops a worker or a page: its job is quarantined.

Each test writes the unreadable value straight into the row, as a hand-written
UPDATE would: the doors refuse them all. PostgreSQL stores times Python cannot
represent (1 BC, year 10000); SQLite stores text, so a year 0 or text that is no
time at all. Both store JSON of the wrong type.
"""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from queues import lifecycle, quarantine, values
from queues.engines import get_engine
from queues.models import DeadLetter, Job, Queue
from queues.protocol import Commands, Session
from queues.states import Status

from .api import ApiClient
from .console_helpers import client_for, make_operator
from .factories import make_job, make_queue, start_claimed
from .processes import WorkerProcess, wait_until

pytestmark = pytest.mark.django_db


def due_but_unreadable() -> str:
    """A run_after in the past that Python cannot read: such a job is claimable."""
    return "0001-01-01T00:00:00+14:00" if connection.vendor == "postgresql" else "0000-12-31 10:00:00"


def future_and_unreadable() -> str:
    """A run_after Python cannot read that never comes due: only readers meet it."""
    return "10000-01-01T00:00:00+00:00" if connection.vendor == "postgresql" else "not a time"


def poison(job: Job, column: str, value: str) -> None:
    placeholder = get_engine().json_placeholder if column in quarantine.JSON_TYPES else "%s"
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE queues_job SET {column} = {placeholder} WHERE id = %s", [value, job.pk])


def poisoned(column: str = "run_after", value: str | None = None, **spec) -> Job:
    job = make_job(**spec)
    poison(job, column, value if value is not None else future_and_unreadable())
    return job


def status_of(job: Job) -> str:
    return Job.objects.filter(pk=job.pk).values_list("status", flat=True).get()


def test_a_claim_kills_a_due_job_it_cannot_read_and_hands_out_the_others():
    bad = poisoned(value=due_but_unreadable())
    good = make_job()
    assert [job.id for job in start_claimed("w", None, 10)] == [good.pk]
    assert status_of(bad) == Status.DEAD


@pytest.mark.django_db(transaction=True)  # each command closes obsolete connections, as a server does
def test_a_tcp_dequeue_kills_an_unreadable_protocol_job_and_answers_empty():
    job, _ = lifecycle.enqueue(values.JobSpec(task_path=Job.RAW_TASK, args=["payload"]))
    poison(job, "run_after", due_but_unreadable())
    assert Commands(lease=30).handle(Session(open=True), "DEQUEUE default") == "EMPTY"
    assert status_of(job) == Status.DEAD


def test_a_claim_kills_a_job_whose_arguments_are_not_an_array():
    bad = poisoned("args", '{"a": 1}')
    assert start_claimed("w", None, 10) == []
    letter = DeadLetter.objects.get(job=bad)
    assert (letter.reason, letter.error_type) == ("quarantined", "UnreadableRow")
    assert "args holds" in letter.error_message and '{"a": 1}' in letter.error_message


def test_the_dead_letter_describes_the_unreadable_value():
    bad = poisoned()
    lifecycle.sweep_unreadable()
    letter = DeadLetter.objects.get(job=bad)
    shown = "10000-01-01 00:00:00+00" if connection.vendor == "postgresql" else "not a time"
    assert f"run_after holds '{shown}', not a time Python can read" in letter.error_message


def test_a_quarantined_row_reads_back_with_its_values_replaced():
    bad = poisoned("kwargs", "[1, 2]")
    lifecycle.sweep_unreadable()
    job = Job.objects.get(pk=bad.pk)
    assert (job.status, job.kwargs, job.finished_at is not None) == (Status.DEAD, {}, True)


def test_reading_jobs_quarantines_the_rows_it_cannot_decode_and_reads_again():
    bad = poisoned()
    good = make_job()
    assert {job.pk: job.status for job in Job.objects.all()} == {bad.pk: Status.DEAD, good.pk: Status.QUEUED}


def test_the_routine_sweep_kills_waiting_jobs_nothing_can_read_and_leaves_the_rest():
    bad = poisoned()
    good = make_job()
    assert lifecycle.sweep_unreadable(live_only=True) == 1
    assert (status_of(bad), status_of(good)) == (Status.DEAD, Status.QUEUED)


def test_the_sweep_finds_nothing_in_readable_rows():
    make_job()
    (claimed,) = start_claimed("w", None, 1)
    lifecycle.finish(
        "w", [values.Finished(claimed, "succeeded", *[Job.objects.get().started_at] * 2, "[[1]]")]
    )
    make_job(args=[{"a": [1, "]]]"]}], meta={"x": {"y": []}})
    assert lifecycle.sweep_unreadable() == 0


def test_a_job_moved_on_since_it_was_read_is_left_for_the_next_sweep():
    bad = poisoned()
    assert not lifecycle.quarantine_job(
        bad.pk, Status.RUNNING, 0, bad.task_path, "default", {"run_after": "x"}
    )
    assert status_of(bad) == Status.QUEUED


@pytest.mark.parametrize("url", ["/jobs", "/jobs/{id}", "/queues", "/stats", "/dead-letters"])
def test_the_api_keeps_answering(url):
    bad = poisoned()
    response = ApiClient().get(url.format(id=bad.pk))
    assert response.status_code == 200


def test_cancelling_an_unreadable_job_through_the_api_answers_with_the_job():
    bad = poisoned()
    response = ApiClient().post(f"/jobs/{bad.pk}/cancel")
    assert (response.status_code, response.json()["status"]) == (200, Status.DEAD)


def test_deleting_a_queue_with_an_unreadable_job_through_the_api_works():
    poisoned(queue="mail")
    assert ApiClient().delete("/queues/mail").json() == {"count": 1}
    assert not Queue.objects.filter(name="mail").exists()


@pytest.mark.parametrize("url", ["/", "/jobs/", "/jobs/{id}/", "/queues/default/", "/dead/"])
def test_every_console_page_keeps_answering(url):
    bad = poisoned()
    assert client_for(make_operator()).get(url.format(id=bad.pk)).status_code == 200


def test_metrics_keep_answering_and_count_the_queue_depth():
    poisoned(value=due_but_unreadable())
    make_job()
    response = Client().get("/metrics")
    assert (response.status_code, 'taskweb_queue_depth{queue="default"} 1.0' in response.text) == (200, True)


def test_health_keeps_answering():
    poisoned()
    assert Client().get("/health").status_code == 200


def test_taskctl_keeps_answering(capsys):
    bad = poisoned()
    call_command("taskctl", "jobs", "list", "--json")
    assert json.loads(capsys.readouterr().out)[0]["id"] == bad.pk


@pytest.mark.process
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_kills_poisoned_jobs_and_keeps_running(tmp_path):
    make_queue("default")
    due = poisoned(value=due_but_unreadable())
    never_due = poisoned()
    wrong_args = poisoned("args", '"text"')
    good = make_job("tests.tasks.add", args=[1, 2])
    # The routine sweep runs a tenth of a prune interval after the worker starts.
    worker = WorkerProcess("--concurrency", "1", log_dir=tmp_path, QUEUES_PRUNE_INTERVAL="1")
    try:
        wait_until(lambda: all(status_of(job) == Status.DEAD for job in (due, never_due, wrong_args)))
        wait_until(lambda: status_of(good) == Status.SUCCEEDED)
        make_job("tests.tasks.add", args=[2, 3])
        wait_until(lambda: Job.objects.filter(status=Status.SUCCEEDED).count() == 2)
        assert worker.proc.poll() is None, worker.output()
    finally:
        assert worker.stop() == 0, worker.output()
    assert DeadLetter.objects.filter(reason="quarantined").count() == 3


def test_a_job_whose_status_is_no_status_is_quarantined_when_read():
    bad = poisoned("status", "bogus")
    assert ApiClient().get(f"/jobs/{bad.pk}").json()["status"] == Status.DEAD


def test_arguments_nested_too_deep_for_any_reader_are_quarantined():
    bad = poisoned("args", "[" * 300 + "]" * 300)
    good = make_job(args=[[[[1]]]])
    assert lifecycle.sweep_unreadable() == 1
    assert (status_of(bad), status_of(good)) == (Status.DEAD, Status.QUEUED)
    assert "args nests more than 200 levels deep" in DeadLetter.objects.get(job=bad).error_message
