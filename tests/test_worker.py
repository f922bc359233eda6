"""runworker as real processes: draining, crashes, timeouts, shutdown, wake-ups."""

from __future__ import annotations

import signal
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection  # noqa: F401  (read by the skipif conditions)
from django.utils import timezone

from queues import lifecycle, values
from queues.compat import Task, TaskError, TaskResult, TaskResultStatus
from queues.exceptions import (
    ResultNotSerialisable,
    TaskImportError,
    WorkerChildDied,
    WorkerLost,
    WorkerShutdown,
    error_path,
)
from queues.models import Attempt, Job, Queue, Worker
from queues.states import Outcome, Status

from . import tasks
from .factories import make_job, make_queue
from .processes import WorkerProcess, wait_until

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def run_log(tmp_path: Path) -> Path:
    """The file test tasks append "<job id> <attempt>" to, once per real execution."""
    path = tmp_path / "runs.log"
    path.touch()
    return path


def executions(run_log: Path) -> Counter[str]:
    return Counter(line.split()[0] for line in run_log.read_text().splitlines())


def start(tmp_path: Path, run_log: Path, *args: str, **env: str) -> WorkerProcess:
    return WorkerProcess(*args, log_dir=tmp_path, TASKWEB_TEST_LOG=str(run_log), **env)


def status_of(job_id: int | str) -> str:
    return Job.objects.get(pk=job_id).status


def test_a_worker_runs_jobs_and_stores_results(tmp_path, run_log):
    result = tasks.add.enqueue(20, 22)
    worker = start(tmp_path, run_log, "--burst")
    assert worker.wait() == 0, worker.output()
    assert tasks.add.get_result(result.id).return_value == 42


def test_two_workers_drain_2000_jobs_without_running_any_twice(tmp_path, run_log):
    results = tasks.record.enqueue_many([((), {}) for _ in range(2000)])
    workers = [start(tmp_path, run_log, "--concurrency", "4") for _ in range(2)]
    try:
        wait_until(lambda: not Job.objects.exclude(status=Status.SUCCEEDED).exists(), timeout=180)
    finally:
        for worker in workers:
            worker.stop()
    runs = executions(run_log)
    assert len(runs) == 2000, "every job ran"
    assert runs.most_common(1)[0][1] == 1, "no job ran twice"
    assert set(runs) == {r.id for r in results}
    done = Worker.objects.filter(id__in=[w.id for w in Worker.objects.all()]).values_list(
        "jobs_done", flat=True
    )
    assert sum(done) == 2000 and all(done), "both workers took a share"


def test_a_job_of_a_killed_worker_is_recovered_and_finished_elsewhere(tmp_path, run_log):
    result = tasks.record_then_sleep_first_attempt.enqueue(600)
    doomed = start(tmp_path, run_log, "--concurrency", "1")
    wait_until(lambda: executions(run_log)[result.id] == 1)  # the task itself has started
    doomed.send(signal.SIGKILL)
    doomed.wait()
    survivor = start(tmp_path, run_log, "--concurrency", "1", QUEUES_RETRY_BASE="0.1")
    try:
        wait_until(lambda: status_of(result.id) == Status.SUCCEEDED, timeout=60)
    finally:
        survivor.stop()
    history = list(Attempt.objects.filter(job_id=result.id).values_list("outcome", "error_type"))
    assert history == [(Outcome.LOST, error_path(WorkerLost)), (Outcome.SUCCEEDED, "")]
    assert [
        error.exception_class for error in tasks.record_then_sleep_first_attempt.get_result(result.id).errors
    ] == [WorkerLost]
    assert executions(run_log)[result.id] == 2


@pytest.mark.parametrize(
    "pool, ended",
    [("processes", "was stopped"), ("threads", "was abandoned")],  # a thread cannot be killed
)
def test_a_job_past_its_timeout_is_stopped_and_retried_then_dead(tmp_path, run_log, pool, ended):
    hung = tasks.hang.enqueue(4)
    worker = start(tmp_path, run_log, "--pool", pool, "--concurrency", "1", QUEUES_RETRY_BASE="0.1")
    try:
        wait_until(lambda: status_of(hung.id) == Status.DEAD, timeout=60)
        after = tasks.add.enqueue(1, 2)  # the slot's fresh child (or thread) runs the next job
        wait_until(lambda: status_of(after.id) == Status.SUCCEEDED, timeout=30)
    finally:
        worker.stop()
    history = Attempt.objects.filter(job_id=hung.id)
    outcomes = list(history.values_list("outcome", "error_type"))
    assert outcomes == [(Outcome.TIMEOUT, "builtins.TimeoutError")] * 2
    assert all(ended in message for message in history.values_list("error_message", flat=True))
    assert [error.exception_class for error in tasks.hang.get_result(hung.id).errors] == [TimeoutError] * 2


def test_sigterm_lets_the_running_job_finish_then_exits_cleanly(tmp_path, run_log):
    result = tasks.record.enqueue(sleep=2)
    worker = start(tmp_path, run_log, "--concurrency", "1")
    wait_until(lambda: status_of(result.id) == Status.RUNNING)
    worker.send(signal.SIGTERM)
    assert worker.wait() == 0, worker.output()
    assert status_of(result.id) == Status.SUCCEEDED
    assert Worker.objects.get().status == "stopped"


def test_a_job_still_running_after_the_grace_period_goes_back_to_the_queue(tmp_path, run_log):
    result = tasks.record.enqueue(sleep=600)
    worker = start(tmp_path, run_log, "--concurrency", "1", "--grace", "0.5")
    wait_until(lambda: status_of(result.id) == Status.RUNNING)
    worker.send(signal.SIGTERM)
    assert worker.wait() == 0, worker.output()
    job = Job.objects.get(pk=result.id)
    assert job.status == Status.QUEUED
    assert job.attempts - job.attempt_offset == 0, "the cut attempt does not count against max_attempts"
    history = list(Attempt.objects.filter(job_id=result.id).values_list("number", "outcome", "error_type"))
    assert history == [(1, Outcome.LOST, error_path(WorkerShutdown))], "but it stays in the history"
    assert tasks.record.get_result(result.id).errors[0].exception_class is WorkerShutdown


def test_a_job_cut_by_shutdown_runs_again_as_its_next_attempt(tmp_path, run_log):
    result = tasks.record_then_sleep_first_attempt.enqueue(600)
    first = start(tmp_path, run_log, "--concurrency", "1", "--grace", "0.5")
    wait_until(lambda: executions(run_log)[result.id] == 1)
    first.send(signal.SIGTERM)
    assert first.wait() == 0, first.output()
    assert start(tmp_path, run_log, "--burst").wait() == 0
    history = list(Attempt.objects.filter(job_id=result.id).values_list("number", "outcome", "error_type"))
    assert history == [(1, Outcome.LOST, error_path(WorkerShutdown)), (2, Outcome.SUCCEEDED, "")]
    assert executions(run_log)[result.id] == 2, "ran twice, and the history says why"


def test_reserved_jobs_go_back_to_the_queue_on_shutdown_with_no_attempt_counted(tmp_path, run_log):
    first = tasks.record.enqueue(sleep=2)
    waiting = [tasks.record.enqueue() for _ in range(4)]
    worker = start(tmp_path, run_log, "--concurrency", "1", "--prefetch", "4")
    wait_until(lambda: status_of(first.id) == Status.RUNNING and status_of(waiting[-1].id) == Status.RESERVED)
    worker.send(signal.SIGTERM)
    assert worker.wait() == 0, worker.output()
    assert status_of(first.id) == Status.SUCCEEDED
    assert {(status_of(r.id), Job.objects.get(pk=r.id).attempts) for r in waiting} == {(Status.QUEUED, 0)}
    assert set(executions(run_log)) == {first.id}


def test_quick_jobs_start_while_long_ones_hold_the_other_children(tmp_path, run_log):
    """The fairness rule: a job goes only to an idle child, never behind a running job."""
    long_jobs = [tasks.record.using(priority=10).enqueue(sleep=600) for _ in range(2)]
    worker = start(tmp_path, run_log, "--concurrency", "3", "--grace", "0.5")
    try:
        wait_until(lambda: all(status_of(r.id) == Status.RUNNING for r in long_jobs))
        quick = [tasks.record.enqueue() for _ in range(30)]
        wait_until(lambda: all(status_of(r.id) == Status.SUCCEEDED for r in quick), timeout=60)
        assert [status_of(r.id) for r in long_jobs] == [Status.RUNNING] * 2, "the long jobs still run"
    finally:
        worker.stop()
    assert set(executions(run_log)) == {r.id for r in [*long_jobs, *quick]}, "each quick job ran"


def test_a_job_claimed_ahead_is_reserved_with_no_start_until_a_child_is_free(tmp_path, run_log):
    first = tasks.record.enqueue(sleep=600)
    ahead = tasks.record.enqueue()
    worker = start(tmp_path, run_log, "--concurrency", "1", "--prefetch", "1", "--grace", "0.5")
    try:
        wait_until(lambda: status_of(first.id) == Status.RUNNING and status_of(ahead.id) == Status.RESERVED)
        job = Job.objects.get(pk=ahead.id)
        assert (job.worker_id, job.started_at) == (Worker.objects.get().id, None)
        assert tasks.record.get_result(ahead.id).status == TaskResultStatus.READY
    finally:
        worker.stop()
    assert status_of(ahead.id) == Status.QUEUED
    assert set(executions(run_log)) == {first.id}


def test_the_timeout_and_started_at_count_from_when_the_code_starts(tmp_path, run_log):
    """A job that waits reserved longer than its timeout, then runs within it, succeeds."""
    first = tasks.record.using(priority=10).enqueue(sleep=4)
    second, _ = lifecycle.enqueue(values.JobSpec("tests.tasks.record", kwargs={"sleep": 1}, timeout=3))
    worker = start(tmp_path, run_log, "--concurrency", "1", "--prefetch", "1")
    try:
        wait_until(lambda: status_of(first.id) == Status.RUNNING and status_of(second.pk) == Status.RESERVED)
        wait_until(lambda: status_of(second.pk) == Status.SUCCEEDED, timeout=60)
    finally:
        worker.stop()
    (first_attempt,) = Attempt.objects.filter(job_id=first.id)
    (second_attempt,) = Attempt.objects.filter(job_id=second.pk)
    assert second_attempt.outcome == Outcome.SUCCEEDED, "not stopped by a clock started at its claim"
    assert Job.objects.get(pk=second.pk).started_at == second_attempt.started_at
    assert second_attempt.started_at >= first_attempt.finished_at, "it started once the child was free"


def test_a_task_that_cannot_be_imported_dies_once_with_a_clear_error(tmp_path, run_log):
    job = make_job()
    Job.objects.filter(pk=job.pk).update(task_path="tests.tasks.removed_in_a_later_deploy")
    worker = start(tmp_path, run_log, "--burst")
    assert worker.wait() == 0, worker.output()
    job.refresh_from_db()
    assert job.status == Status.DEAD and job.attempts == 1
    assert "removed_in_a_later_deploy" in job.last_error
    (error_type,) = Attempt.objects.filter(job=job).values_list("error_type", flat=True)
    assert TaskError(exception_class_path=error_type, traceback="").exception_class is TaskImportError


def failed_then_next_job(tmp_path: Path, run_log: Path, task: Task, *args: object) -> TaskResult:
    """Run a job that fails, then another one, in one child of a burst worker; the next
    job must still succeed. Returns the first job's result as it ended."""
    failing = task.enqueue(*args)
    after = tasks.add.enqueue(1, 2)
    worker = start(tmp_path, run_log, "--burst", "--concurrency", "1")
    assert worker.wait() == 0, worker.output()
    assert tasks.add.get_result(after.id).return_value == 3, "the worker went on with the next job"
    live = task.get_result(failing.id)
    assert live.status == TaskResultStatus.FAILED
    return live


def test_a_task_that_exits_fails_with_its_own_class_and_traceback(tmp_path, run_log):
    live = failed_then_next_job(tmp_path, run_log, tasks.stop_process, "exit()")
    assert live.errors[0].exception_class is SystemExit and "SystemExit: 3" in live.errors[0].traceback
    assert not Attempt.objects.filter(error_type=error_path(WorkerChildDied)).exists()


def test_a_child_that_leaves_without_unwinding_is_recorded_as_worker_child_died(tmp_path, run_log):
    live = failed_then_next_job(tmp_path, run_log, tasks.exit_process_at_once)
    assert live.errors[0].exception_class is WorkerChildDied


def test_a_return_value_no_database_stores_fails_its_job_not_the_worker(tmp_path, run_log):
    live = failed_then_next_job(tmp_path, run_log, tasks.returns_text_with_a_nul)
    assert live.errors[0].exception_class is ResultNotSerialisable


def test_failures_are_retried_until_the_dead_letters(tmp_path, run_log):
    result = tasks.fail.using(max_attempts=3).enqueue("always")
    worker = start(tmp_path, run_log, QUEUES_RETRY_BASE="0.05", QUEUES_POLL_MAX="0.05")
    try:
        wait_until(lambda: status_of(result.id) == Status.DEAD, timeout=60)
    finally:
        worker.stop()
    history = Attempt.objects.filter(job_id=result.id)
    assert [a.outcome for a in history] == [Outcome.FAILED] * 3
    assert "RuntimeError: always" in history.last().traceback


def test_cancelling_a_running_job_stops_it(tmp_path, run_log):
    result = tasks.record.enqueue(sleep=600)
    worker = start(tmp_path, run_log, "--concurrency", "1")
    try:
        wait_until(lambda: status_of(result.id) == Status.RUNNING)
        lifecycle.cancel(int(result.id))
        after = tasks.add.enqueue(1, 1)
        wait_until(lambda: status_of(after.id) == Status.SUCCEEDED, timeout=30)
    finally:
        worker.stop()
    assert status_of(result.id) == Status.CANCELLED


def test_a_reserved_job_cancelled_while_waiting_for_a_child_never_starts(tmp_path, run_log):
    first = tasks.record.enqueue(sleep=3)
    behind = tasks.record.enqueue()
    worker = start(tmp_path, run_log, "--concurrency", "1", "--prefetch", "4")
    try:
        wait_until(lambda: status_of(first.id) == Status.RUNNING and status_of(behind.id) == Status.RESERVED)
        lifecycle.cancel(int(behind.id))
        wait_until(lambda: status_of(first.id) == Status.SUCCEEDED, timeout=30)
    finally:
        worker.stop()
    assert status_of(behind.id) == Status.CANCELLED
    assert set(executions(run_log)) == {first.id}


def test_progress_reported_by_a_task_is_stored(tmp_path, run_log):
    result = tasks.report_progress.enqueue(steps=4)
    assert start(tmp_path, run_log, "--burst").wait() == 0
    job = Job.objects.get(pk=result.id)
    assert (job.progress, job.progress_message) == (100, "step 4")


def test_a_worker_serves_only_its_queues(tmp_path, run_log):
    make_queue("images")
    other = tasks.noop.enqueue()
    mine = tasks.noop.using(queue_name="images").enqueue()
    assert start(tmp_path, run_log, "--burst", "--queues", "images").wait() == 0
    assert (status_of(mine.id), status_of(other.id)) == (Status.SUCCEEDED, Status.QUEUED)


def test_unknown_queue_on_the_command_line_is_refused(tmp_path, run_log):
    worker = start(tmp_path, run_log, "--queues", "nope")
    assert worker.wait() != 0
    assert "Unknown queue(s): nope" in worker.output()


def test_a_declared_queue_missing_from_the_table_is_created_for_the_command_line(tmp_path, run_log):
    Queue.objects.filter(name="default").delete()
    assert start(tmp_path, run_log, "--burst", "--queues", "default").wait() == 0
    assert Queue.objects.filter(name="default").exists()


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="LISTEN/NOTIFY is PostgreSQL's")
def test_listen_notify_wakes_an_idle_worker_without_polling(tmp_path, run_log):
    worker = start(tmp_path, run_log, QUEUES_POLL_INTERVAL="3600")
    try:
        wait_until(lambda: Worker.objects.exists())
        wait_until(lambda: "started" in worker.output())
        result = tasks.noop.enqueue()
        wait_until(lambda: status_of(result.id) == Status.SUCCEEDED, timeout=20)
    finally:
        worker.stop()


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="LISTEN/NOTIFY is PostgreSQL's")
def test_retrying_a_scheduled_job_wakes_an_idle_worker_as_a_replay_does(tmp_path, run_log):
    worker = start(tmp_path, run_log, QUEUES_POLL_INTERVAL="3600")
    try:
        wait_until(lambda: "started" in worker.output())
        result = tasks.noop.using(run_after=timezone.now() + timedelta(hours=1)).enqueue()
        lifecycle.retry(int(result.id))
        wait_until(lambda: status_of(result.id) == Status.SUCCEEDED, timeout=20)
    finally:
        worker.stop()


def test_poll_only_mode_picks_up_jobs(tmp_path, run_log):
    worker = start(tmp_path, run_log, "--no-listen", QUEUES_POLL_MAX="0.2")
    try:
        wait_until(lambda: "started" in worker.output())
        result = tasks.noop.enqueue()
        wait_until(lambda: status_of(result.id) == Status.SUCCEEDED, timeout=20)
    finally:
        worker.stop()
