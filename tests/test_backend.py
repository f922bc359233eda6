"""Taskweb as a Django Tasks backend: enqueue, options, results."""

from __future__ import annotations

import pickle
from collections import UserDict, UserList
from datetime import datetime, timedelta
from datetime import timezone as timezone_of

import pytest
from asgiref.sync import sync_to_async
from django.db import connections, transaction
from django.utils import timezone

from queues import lifecycle, values
from queues.compat import InvalidTaskError, TaskResultDoesNotExist, TaskResultStatus
from queues.exceptions import UnstorableArguments, WorkerLost
from queues.models import Job
from queues.states import Outcome, Status

from . import tasks
from .factories import make_queue, start_claimed

pytestmark = pytest.mark.django_db


def run_claimed(outcome: Outcome = Outcome.SUCCEEDED, **fields) -> None:
    """Play the worker's part for the next job: claim it and record an outcome."""
    (claimed,) = start_claimed("w1", None, 1)
    now = timezone.now()
    lifecycle.finish(
        "w1", [values.Finished(job=claimed, outcome=outcome, started_at=now, finished_at=now, **fields)]
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


@pytest.mark.parametrize(
    ("argument", "error", "message"),
    [(datetime.now(), TypeError, "Unsupported type"), (b"\xff", ValueError, "Unsupported value")],
)
def test_arguments_the_tasks_api_refuses_raise_its_own_error(argument, error, message):
    with pytest.raises(error, match=message) as raised:
        tasks.add.enqueue(argument, 1)
    assert not isinstance(raised.value, InvalidTaskError)
    assert not Job.objects.exists()


def test_enqueue_many_refuses_what_the_tasks_api_refuses_and_writes_nothing():
    with pytest.raises(TypeError, match="Unsupported type"):
        tasks.add.enqueue_many([((1, 2), {}), ((object(), 2), {})])
    assert not Job.objects.exists()


def test_arguments_are_normalised_as_the_tasks_api_normalises_them():
    result = tasks.noop.enqueue(b"bytes", UserList([1, 2]), (3, 4), mapping=UserDict(a=(5,)))
    expected = (["bytes", [1, 2], [3, 4]], {"mapping": {"a": [5]}})
    assert (result.args, result.kwargs) == expected
    job = Job.objects.get(pk=result.id)
    assert (job.args, job.kwargs) == expected


def test_dict_keys_that_are_not_text_come_back_as_json_stores_them():
    result = tasks.noop.enqueue({1: "one", None: "none", False: "no", 1.5: "half"})
    assert result.args == [{"1": "one", "null": "none", "false": "no", "1.5": "half"}]
    assert tasks.noop.get_result(result.id) == result


@pytest.mark.parametrize(
    "argument",
    [float("nan"), float("inf"), "a\x00b", "\ud800", {"key\x00": 1}, [[{"deep": "\udfff"}]]],
    ids=["nan", "infinity", "nul", "lone-surrogate", "nul-in-a-key", "nested-surrogate"],
)
def test_arguments_no_database_can_store_are_refused_before_anything_is_written(argument):
    with pytest.raises(UnstorableArguments, match="The args cannot be stored") as raised:
        tasks.noop.enqueue(argument)
    assert isinstance(raised.value, TypeError) and isinstance(raised.value, InvalidTaskError)
    assert not Job.objects.exists()


def test_enqueue_many_refuses_arguments_no_database_can_store_and_writes_nothing():
    with pytest.raises(UnstorableArguments, match="The kwargs cannot be stored"):
        tasks.noop.enqueue_many([((), {}), ((), {"text": "a\x00b"})])
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
    start_claimed("w1", None, 1)
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


def test_get_result_equals_the_enqueued_result_when_no_option_was_set():
    result = tasks.add.enqueue(2, 3)
    assert result.task.run_after is None
    assert tasks.add.get_result(result.id) == result


def test_get_result_equals_the_enqueued_result_with_every_option_set():
    make_queue("reports")
    later = timezone.now() + timedelta(minutes=5)
    task = tasks.with_options.using(
        queue_name="reports", priority=-7, run_after=later, max_attempts=2, timeout=5, idempotency_key="k"
    )
    result = task.enqueue()
    assert tasks.with_options.get_result(result.id) == result


def test_get_result_keeps_the_options_the_task_defines_when_the_caller_set_none():
    result = tasks.with_options.enqueue()
    live = tasks.with_options.get_result(result.id)
    assert live == result
    assert (live.task.max_attempts, live.task.timeout) == (7, 11)


def test_run_after_reads_back_as_given_after_a_retry_moved_the_job():
    given = timezone.now() - timedelta(seconds=1)
    unset = tasks.fail.enqueue()
    delayed = tasks.fail.using(run_after=given).enqueue()
    run_claimed(Outcome.FAILED, error_type="builtins.RuntimeError")
    run_claimed(Outcome.FAILED, error_type="builtins.RuntimeError")
    assert Job.objects.filter(status=Status.SCHEDULED).count() == 2, "both wait for a retry"
    assert tasks.fail.get_result(unset.id).task.run_after is None
    assert tasks.fail.get_result(delayed.id).task.run_after == given


def test_a_job_enqueued_through_another_alias_reads_back_with_that_backend(settings):
    settings.TASKS = {**settings.TASKS, "other": {"BACKEND": "queues.backend.QueueBackend", "QUEUES": []}}
    result = tasks.add.using(backend="other").enqueue(1, 2)
    live = tasks.add.get_result(result.id)  # through the task's own backend, "default"
    assert (live.backend, live.task.backend) == ("other", "other")
    assert live == result


def test_the_result_of_a_reused_idempotency_key_equals_the_first_result():
    first = tasks.add.using(idempotency_key="once").enqueue(1, 2)
    assert tasks.add.using(idempotency_key="once").enqueue(1, 2) == first


def test_enqueue_many_results_equal_what_get_result_reads_back():
    results = tasks.add.using(priority=3).enqueue_many([((i, (i,)), {}) for i in range(3)])
    assert [tasks.add.get_result(result.id) for result in results] == results
    assert results[1].args == [1, [1]]


def test_a_job_waiting_for_its_next_attempt_reads_ready_with_its_errors_so_far():
    result = tasks.fail.enqueue()
    (claimed,) = start_claimed("w1", None, 1)
    started = timezone.now() - timedelta(seconds=2)
    failed = values.Finished(
        claimed, Outcome.FAILED, started, timezone.now(), error_type="builtins.RuntimeError", traceback="Tb"
    )
    lifecycle.finish("w1", [failed])
    live = tasks.fail.get_result(result.id)
    assert live.status == TaskResultStatus.READY
    assert [(error.exception_class, error.traceback) for error in live.errors] == [(RuntimeError, "Tb")]
    assert (live.attempts, live.worker_ids) == (1, ["w1"])
    assert live.last_attempted_at == started, "when the latest attempt started, as the Tasks API says"


def test_a_job_of_a_lost_worker_carries_an_error_whose_class_imports():
    result = tasks.noop.enqueue()
    start_claimed("w1", None, 1)
    Job.objects.filter(pk=result.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert lifecycle.recover_lost() == 1
    assert tasks.noop.get_result(result.id).errors[0].exception_class is WorkerLost


def test_a_task_pickles_and_unpickles_with_daphne_and_twisted_imported():
    import daphne.server  # noqa: F401 - Twisted registers its reducer for bound methods
    import twisted.persisted.styles  # noqa: F401

    task = tasks.with_options.using(priority=5, max_attempts=2, run_after=timezone.now())
    assert pickle.loads(pickle.dumps(task)) == task


def test_a_task_result_pickles_and_unpickles_with_daphne_and_twisted_imported():
    import daphne.server  # noqa: F401 - Twisted registers its reducer for bound methods
    import twisted.persisted.styles  # noqa: F401

    result = tasks.add.enqueue(1, 2)
    run_claimed(result_json="3")
    live = tasks.add.get_result(result.id)
    assert pickle.loads(pickle.dumps(live)) == live


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


@pytest.mark.parametrize("depth", [40, 5000])
def test_arguments_nested_past_the_limit_are_refused(depth):
    args: list = []
    for _ in range(depth):
        args = [args]
    with pytest.raises(InvalidTaskError, match="args nests arrays and objects more than 32 levels deep"):
        tasks.noop.enqueue(args)
    assert not Job.objects.exists()
