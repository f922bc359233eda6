"""run_jobs runs a project's jobs inside its own tests (queues/testing.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from queues.compat import TaskResultStatus
from queues.models import Attempt, DeadLetter, Job, Worker
from queues.states import Status
from queues.testing import run_jobs

from . import tasks
from .factories import make_queue

pytestmark = pytest.mark.django_db


def test_due_jobs_run_in_the_tests_own_transaction_and_come_back_as_results():
    enqueued = tasks.add.enqueue(20, 22)
    ran = run_jobs(queues=["default"])
    (result,) = ran.succeeded
    assert (result.id, result.status, result.return_value) == (enqueued.id, TaskResultStatus.SUCCESSFUL, 42)
    assert (ran.failed, ran.scheduled) == ([], [])
    assert Attempt.objects.get(job_id=enqueued.id).outcome == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_jobs_also_run_in_a_transactional_test_and_need_no_queue_set_up():
    enqueued = tasks.add.enqueue(1, 2)
    assert [result.return_value for result in run_jobs(queues=["default"]).succeeded] == [3]
    assert Job.objects.get(pk=enqueued.id).status == Status.SUCCEEDED


def test_a_failed_attempt_is_reported_with_its_error_and_its_retry_as_scheduled():
    enqueued = tasks.fail.enqueue("broken")
    ran = run_jobs()
    (failed,) = ran.failed
    assert (failed.id, failed.status) == (enqueued.id, TaskResultStatus.READY)
    assert failed.errors[0].exception_class_path == "builtins.RuntimeError"
    assert [result.id for result in ran.scheduled] == [enqueued.id]


def test_a_job_out_of_attempts_is_reported_failed_and_goes_to_the_dead_letters():
    enqueued = tasks.fail.using(max_attempts=1).enqueue()
    (failed,) = run_jobs().failed
    assert failed.status == TaskResultStatus.FAILED
    assert DeadLetter.objects.filter(job_id=enqueued.id).exists()


def test_jobs_enqueued_by_running_jobs_run_too():
    tasks.enqueue_add.enqueue(2, 3)
    ran = run_jobs()
    assert sorted(str(result.return_value) for result in ran.succeeded) == ["5", "None"]


def test_only_the_named_queues_run():
    make_queue("mail")
    elsewhere = tasks.noop.using(queue_name="mail").enqueue()
    assert run_jobs(queues=["default"]).succeeded == []
    assert Job.objects.get(pk=elsewhere.id).status == Status.QUEUED


def test_a_job_due_later_is_left_alone_and_reported_as_scheduled():
    later = tasks.noop.using(run_after=timezone.now() + timedelta(hours=1)).enqueue()
    ran = run_jobs()
    assert (ran.succeeded, [result.id for result in ran.scheduled]) == ([], [later.id])


def test_a_job_enqueued_in_a_rolled_back_transaction_never_runs():
    with pytest.raises(RuntimeError), transaction.atomic():
        tasks.noop.enqueue()
        raise RuntimeError("rolled back")
    assert run_jobs().succeeded == []


def test_jobs_that_never_stop_enqueueing_stop_at_the_limit_and_stay_queued():
    tasks.enqueue_itself.enqueue()
    with pytest.raises(RuntimeError, match="ran 5 attempts"):
        run_jobs(limit=5)
    assert Job.objects.filter(status=Status.QUEUED).count() == 1
    assert Worker.objects.get().status == "stopped"
