"""Taskweb as a Django Tasks backend: enqueue, options, results."""

from __future__ import annotations

from datetime import datetime, timedelta
from datetime import timezone as timezone_of

import pytest
from asgiref.sync import sync_to_async
from django.db import connections, transaction
from django.utils import timezone

from queues import broker
from queues.compat import InvalidTaskError, TaskResultDoesNotExist, TaskResultStatus
from queues.models import Job
from queues.states import Outcome, Status

from . import tasks
from .factories import make_queue

pytestmark = pytest.mark.django_db


def run_claimed(outcome: Outcome = Outcome.SUCCEEDED, **fields) -> None:
    """Play the worker's part for the next job: claim it and record an outcome."""
    (claimed,) = broker.claim("w1", None, 1)
    now = timezone.now()
    broker.finish(
        "w1", [broker.Finished(job=claimed, outcome=outcome, started_at=now, finished_at=now, **fields)]
    )


def test_enqueue_returns_a_ready_result_backed_by_a_job():
    result = tasks.add.enqueue(2, 3)
    assert result.status == TaskResultStatus.READY
    job = Job.objects.get(pk=result.id)
    assert (job.task_path, job.args, job.status) == ("tests.tasks.add", [2, 3], Status.QUEUED)


def test_task_options_become_job_limits():
    job = Job.objects.get(pk=tasks.with_options.enqueue().id)
    assert (job.max_attempts, job.timeout) == (7, 11)


def test_using_sets_queue_priority_and_run_after():
    make_queue("reports")
    later = timezone.now() + timedelta(minutes=5)
    result = tasks.noop.using(queue_name="reports", priority=10, run_after=later).enqueue()
    job = Job.objects.get(pk=result.id)
    assert (job.queue.name, job.priority, job.run_after, job.status) == (
        "reports",
        10,
        later,
        Status.SCHEDULED,
    )


def test_using_can_override_task_options_per_call():
    job = Job.objects.get(pk=tasks.with_options.using(max_attempts=2, timeout=5).enqueue().id)
    assert (job.max_attempts, job.timeout) == (2, 5)


def test_using_an_idempotency_key_returns_the_existing_job():
    first = tasks.noop.using(idempotency_key="order-7").enqueue()
    second = tasks.noop.using(idempotency_key="order-7").enqueue()
    assert first.id == second.id
    assert Job.objects.count() == 1


def test_enqueue_onto_an_unknown_queue_raises_invalid_task():
    with pytest.raises(InvalidTaskError, match="'nope' does not exist"):
        tasks.noop.using(queue_name="nope").enqueue()
    assert not Job.objects.exists()


def test_arguments_that_are_not_json_raise_invalid_task():
    with pytest.raises(InvalidTaskError, match="not JSON-serialisable"):
        tasks.add.enqueue(object(), 1)
    assert not Job.objects.exists()


def test_priority_out_of_range_is_refused_before_anything_is_written():
    with pytest.raises(InvalidTaskError):
        tasks.noop.using(priority=1000).enqueue()
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_enqueue_is_part_of_the_callers_transaction():
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        tasks.noop.enqueue()
        1 / 0  # noqa: B018
    assert not Job.objects.exists()
    with transaction.atomic():
        tasks.noop.enqueue()
    assert Job.objects.count() == 1


def test_enqueue_many_inserts_in_bulk_and_returns_results():
    results = tasks.add.enqueue_many([((i, i), {}) for i in range(100)])
    assert len(results) == 100
    assert sorted(Job.objects.values_list("args", flat=True))[:2] == [[0, 0], [1, 1]]
    assert {r.status for r in results} == {TaskResultStatus.READY}


def test_get_result_follows_the_job_to_success():
    result = tasks.add.enqueue(2, 3)
    run_claimed(result_json="5")
    live = tasks.add.get_result(result.id)
    assert live.status == TaskResultStatus.SUCCESSFUL
    assert live.return_value == 5
    assert live.attempts == 1 and live.worker_ids == ["w1"]
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL


def test_get_result_of_a_running_job():
    result = tasks.noop.enqueue()
    broker.claim("w1", None, 1)
    live = tasks.noop.get_result(result.id)
    assert live.status == TaskResultStatus.RUNNING and live.worker_ids == ["w1"]


def test_get_result_of_a_dead_job_carries_its_errors():
    result = tasks.fail.using(max_attempts=1).enqueue()
    run_claimed(
        Outcome.FAILED, error_type="builtins.RuntimeError", error_message="boom", traceback="Traceback..."
    )
    live = tasks.fail.get_result(result.id)
    assert live.status == TaskResultStatus.FAILED
    assert live.errors[0].exception_class is RuntimeError
    assert live.errors[0].traceback == "Traceback..."


@pytest.mark.parametrize("bad_id", ["999999", "not-a-number", ""])
def test_get_result_of_an_unknown_id_raises_does_not_exist(bad_id):
    with pytest.raises(TaskResultDoesNotExist):
        tasks.noop.get_result(bad_id)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
async def test_aget_result_works_from_async_code():
    result = await sync_to_async(tasks.add.enqueue)(1, 1)
    live = await tasks.add.aget_result(result.id)
    await sync_to_async(connections.close_all)()  # the executor thread's connection
    assert live.id == result.id and live.status == TaskResultStatus.READY


@pytest.mark.parametrize(
    "run_after",
    [
        datetime(1, 1, 1, tzinfo=timezone_of(timedelta(hours=14))),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone_of(timedelta(hours=-14))),
    ],
)
def test_a_run_after_no_reader_could_handle_is_refused(run_after):
    with pytest.raises(InvalidTaskError, match="out of range"):
        tasks.noop.using(run_after=run_after).enqueue()
    assert not Job.objects.exists()


@pytest.mark.parametrize(("option", "value"), [("max_attempts", 10**6), ("timeout", 10**9)])
def test_an_option_past_its_limit_is_refused(option, value):
    with pytest.raises(InvalidTaskError, match=f"{option} must be a whole number"):
        tasks.noop.using(**{option: value}).enqueue()
    assert not Job.objects.exists()
