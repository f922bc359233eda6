"""The lifecycle contract: every transition, its guards, and its refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from queues import bounds, lifecycle, values
from queues.engines import get_engine
from queues.engines.rows import ClaimQuery
from queues.exceptions import (
    InvalidJob,
    JobNotFound,
    JobStateError,
    UnknownQueue,
    UnknownTask,
    WorkerLost,
    WorkerShutdown,
    error_path,
)
from queues.models import Attempt, DeadLetter, Job, MinuteStat, Worker
from queues.states import Outcome, Status

from .factories import make_job, make_queue, start_claimed

pytestmark = pytest.mark.django_db

WORKER = "test-worker"


def claim_one(worker_id: str = WORKER, queues: list[str] | None = None) -> values.ClaimedJob:
    (job,) = start_claimed(worker_id, queues, 1)
    return job


def finished(job: values.ClaimedJob, outcome: Outcome = Outcome.SUCCEEDED, **fields) -> values.Finished:
    now = timezone.now()
    return values.Finished(job=job, outcome=outcome, started_at=now, finished_at=now, **fields)


def failure(job: values.ClaimedJob, **fields) -> values.Finished:
    return finished(job, Outcome.FAILED, error_type="builtins.RuntimeError", error_message="boom", **fields)


def register(worker_id: str = WORKER) -> Worker:
    return lifecycle.register_worker(Worker(id=worker_id, hostname="h", pid=1, concurrency=1))


# --- enqueue -----------------------------------------------------------------------


def test_enqueue_creates_a_queued_job_with_the_queue_defaults():
    make_queue("mail", max_attempts=6, timeout=30)
    job = make_job(queue="mail", args=[1], kwargs={"a": "b"})
    assert (job.status, job.max_attempts, job.timeout, job.args, job.kwargs) == (
        Status.QUEUED,
        6,
        30,
        [1],
        {"a": "b"},
    )


def test_enqueue_with_a_future_run_after_is_scheduled():
    job = make_job(run_after=timezone.now() + timedelta(hours=1))
    assert job.status == Status.SCHEDULED


def test_enqueue_onto_an_unknown_queue_is_refused_naming_it():
    with pytest.raises(UnknownQueue, match="'typo'"):
        lifecycle.enqueue(values.JobSpec(task_path="tests.tasks.noop", queue="typo"))
    assert not Job.objects.exists()


def test_enqueue_onto_an_unknown_queue_creates_it_when_auto_create_is_on(settings):
    settings.QUEUES_AUTO_CREATE = True
    job, _ = lifecycle.enqueue(values.JobSpec(task_path="tests.tasks.noop", queue="fresh"))
    assert job.queue.name == "fresh"


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"task_path": "tests.tasks.missing"}, "task"),
        ({"task_path": "tests.tasks._log"}, "task"),
        ({"priority": 101}, "priority"),
        ({"priority": "urgent"}, "priority"),
        ({"priority": 1.5}, "priority"),
        ({"args": [object()]}, "args"),
        ({"args": "not a list"}, "args"),
        ({"kwargs": {"x": {1, 2}}}, "kwargs"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"timeout": -1}, "timeout"),
        ({"run_after": timezone.now().replace(tzinfo=None)}, "run_after"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"queue": "bad name!"}, "queue"),
    ],
)
def test_bad_input_raises_a_clear_error_and_writes_nothing(spec, field):
    spec = {"task_path": "tests.tasks.noop", **spec}
    with pytest.raises(InvalidJob) as error:
        lifecycle.enqueue(values.JobSpec(**spec))
    assert error.value.field == field
    assert str(error.value)
    assert not Job.objects.exists()


def test_unknown_task_error_names_the_path():
    with pytest.raises(UnknownTask, match=r"tests\.tasks\.missing"):
        lifecycle.enqueue(values.JobSpec(task_path="tests.tasks.missing"))


def test_priority_names_map_to_numbers():
    assert [bounds.parse_priority(name) for name in ("critical", "high", "normal", "low")] == [
        100,
        10,
        0,
        -10,
    ]


def test_idempotency_key_returns_the_existing_job():
    first, created = lifecycle.enqueue(values.JobSpec(task_path="tests.tasks.noop", idempotency_key="k1"))
    second, created_again = lifecycle.enqueue(
        values.JobSpec(task_path="tests.tasks.noop", idempotency_key="k1")
    )
    assert (created, created_again) == (True, False)
    assert second.pk == first.pk
    assert Job.objects.count() == 1


def test_idempotency_keys_are_per_queue():
    make_queue("other")
    lifecycle.enqueue(values.JobSpec(task_path="tests.tasks.noop", idempotency_key="k"))
    _, created = lifecycle.enqueue(
        values.JobSpec(task_path="tests.tasks.noop", queue="other", idempotency_key="k")
    )
    assert created


def test_enqueue_many_inserts_all_and_honours_idempotency_keys():
    existing = make_job(idempotency_key="seen")
    specs = [values.JobSpec(task_path="tests.tasks.add", args=[i, i]) for i in range(50)]
    specs += [
        values.JobSpec(task_path="tests.tasks.noop", idempotency_key="seen"),
        values.JobSpec(task_path="tests.tasks.noop", idempotency_key="new"),
        values.JobSpec(task_path="tests.tasks.noop", idempotency_key="new"),
    ]
    results = lifecycle.enqueue_many(specs)
    assert len(results) == 53
    assert all(created for _, created in results[:50])
    assert [Job.objects.get(pk=job_id).args for job_id, _ in results[:2]] == [[0, 0], [1, 1]]
    assert results[50] == (existing.pk, False)
    assert results[51][1] is True and results[52] == (results[51][0], False)
    assert Job.objects.count() == 1 + 50 + 1


def test_enqueue_many_rows_match_single_enqueue():
    single = make_job("tests.tasks.add", args=[1, 2], kwargs={}, priority="high")
    ((job_id, _),) = lifecycle.enqueue_many(
        [values.JobSpec(task_path="tests.tasks.add", args=[1, 2], priority="high")]
    )
    bulk = Job.objects.get(pk=job_id)
    fields = ("queue_id", "task_path", "args", "kwargs", "priority", "status", "attempts", "max_attempts",
              "timeout", "progress", "progress_message", "last_error", "meta", "result")  # fmt: skip
    assert [getattr(bulk, f) for f in fields] == [getattr(single, f) for f in fields]


def test_enqueue_many_with_one_bad_job_writes_nothing():
    specs = [
        values.JobSpec(task_path="tests.tasks.noop"),
        values.JobSpec(task_path="tests.tasks.noop", priority=500),
    ]
    with pytest.raises(InvalidJob):
        lifecycle.enqueue_many(specs)
    assert not Job.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_enqueue_inside_a_rolled_back_transaction_leaves_no_job():
    with pytest.raises(RuntimeError), transaction.atomic():
        make_job()
        raise RuntimeError("caller fails")
    assert not Job.objects.exists()


def test_enqueue_counts_into_the_minute_rollup():
    make_job()
    make_job()
    assert MinuteStat.objects.get(task_path="tests.tasks.noop").enqueued == 2


# --- claim -------------------------------------------------------------------------


def test_claim_takes_highest_priority_first_then_oldest():
    now = timezone.now()
    low = make_job(priority=-10, run_after=now - timedelta(minutes=5))
    old = make_job(priority=10, run_after=now - timedelta(minutes=2))
    new = make_job(priority=10, run_after=now - timedelta(minutes=1))
    order = [start_claimed(WORKER, None, 1)[0].id for _ in range(3)]
    assert order == [old.id, new.id, low.id]


def test_one_claim_hands_out_its_jobs_in_priority_order():
    low = make_job(priority=-10)
    high = make_job(priority=10)
    normal = make_job()
    assert [job.id for job in start_claimed(WORKER, None, 3)] == [high.id, normal.id, low.id]


def test_claim_takes_up_to_the_free_slots_in_one_go():
    for _ in range(5):
        make_job()
    assert len(start_claimed(WORKER, None, 3)) == 3
    assert len(start_claimed(WORKER, None, 3)) == 2
    assert start_claimed(WORKER, None, 3) == []


def test_claim_marks_the_job_running_with_a_lease():
    job = make_job()
    claimed = claim_one()
    job.refresh_from_db()
    assert (claimed.id, claimed.attempt) == (job.id, 1)
    assert job.status == Status.RUNNING and job.worker_id == WORKER
    assert job.lease_expires_at > timezone.now()


def test_delayed_jobs_wait_until_their_time():
    make_job(run_after=timezone.now() + timedelta(seconds=60))
    assert start_claimed(WORKER, None, 10) == []


def test_due_scheduled_jobs_are_claimed_once_promoted():
    job = make_job(run_after=timezone.now() + timedelta(seconds=60))
    Job.objects.filter(pk=job.pk).update(run_after=timezone.now() - timedelta(seconds=1))
    assert lifecycle.promote_due() == 1
    assert claim_one().id == job.id


def test_the_claim_reads_queued_jobs_only():
    job = make_job(run_after=timezone.now() + timedelta(seconds=60))
    Job.objects.filter(pk=job.pk).update(run_after=timezone.now() - timedelta(seconds=1))
    now = timezone.now()
    claimed = get_engine().claim(ClaimQuery(WORKER, None, 10, now, now))
    assert claimed == [], "a scheduled job waits for its promotion, whatever its run_after"


def test_a_claimed_job_is_reserved_until_it_starts():
    job = make_job()
    (claimed,) = lifecycle.claim(WORKER, None, 1)
    job.refresh_from_db()
    assert (job.status, job.worker_id, job.started_at) == (Status.RESERVED, WORKER, None)
    at = timezone.now()
    assert lifecycle.start(WORKER, [claimed.id], at) == {claimed.id}
    job.refresh_from_db()
    assert (job.status, job.started_at) == (Status.RUNNING, at)


def test_a_job_cancelled_while_reserved_does_not_start():
    make_job()
    (claimed,) = lifecycle.claim(WORKER, None, 1)
    lifecycle.cancel(claimed.id)
    assert lifecycle.start(WORKER, [claimed.id], timezone.now()) == set()
    assert Job.objects.get(pk=claimed.id).status == Status.CANCELLED


def test_another_workers_reservation_does_not_start_here():
    make_job()
    (claimed,) = lifecycle.claim("elsewhere", None, 1)
    assert lifecycle.start(WORKER, [claimed.id], timezone.now()) == set()
    assert Job.objects.get(pk=claimed.id).status == Status.RESERVED


def test_a_reserved_job_cannot_succeed_before_it_starts():
    make_job()
    (claimed,) = lifecycle.claim(WORKER, None, 1)
    assert lifecycle.finish(WORKER, [finished(claimed)]) == set()
    assert Job.objects.get(pk=claimed.id).status == Status.RESERVED


def test_a_lost_workers_reserved_job_is_released_without_counting_the_claim():
    make_job()
    (claimed,) = lifecycle.claim(WORKER, None, 1)
    Job.objects.filter(pk=claimed.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert lifecycle.recover_lost() == 1
    job = Job.objects.get(pk=claimed.id)
    assert (job.status, job.attempts, job.worker_id) == (Status.QUEUED, 0, WORKER)
    assert not Attempt.objects.filter(job=job).exists(), "it never ran: no attempt to record"


def test_claim_skips_paused_queues():
    make_queue("paused", paused=True)
    make_job(queue="paused")
    assert start_claimed(WORKER, None, 10) == []


def test_claim_only_from_the_named_queues():
    make_queue("a")
    make_queue("b")
    job_b = make_job(queue="b")
    make_job(queue="a")
    assert [job.id for job in start_claimed(WORKER, ["b"], 10)] == [job_b.id]


# --- finish ------------------------------------------------------------------------


def test_success_stores_the_result_and_the_attempt():
    register()
    make_job("tests.tasks.add", args=[1, 2])
    claimed = claim_one()
    assert lifecycle.finish(WORKER, [finished(claimed, result_json="3")]) == {claimed.id}
    job = Job.objects.get(pk=claimed.id)
    assert (job.status, job.result, job.progress) == (Status.SUCCEEDED, 3, 100)
    attempt = Attempt.objects.get(job=job)
    assert (attempt.number, attempt.outcome, attempt.worker_id) == (1, Outcome.SUCCEEDED, WORKER)


def test_count_work_adds_to_the_worker_totals():
    register()
    lifecycle.count_work(WORKER, done=3, failed=1)
    lifecycle.count_work(WORKER, done=2, failed=0)
    worker = Worker.objects.get(id=WORKER)
    assert (worker.jobs_done, worker.jobs_failed) == (5, 1)


def test_failure_is_retried_after_a_back_off():
    make_job("tests.tasks.fail")
    claimed = claim_one()
    lifecycle.finish(WORKER, [failure(claimed)])
    job = Job.objects.get(pk=claimed.id)
    assert job.status == Status.SCHEDULED
    assert job.run_after > timezone.now() + timedelta(seconds=1)
    assert job.last_error == "builtins.RuntimeError: boom"


def test_retries_back_off_longer_each_time_then_dead_letter(settings):
    settings.QUEUES_RETRY_JITTER = 0
    job = make_job("tests.tasks.fail", max_attempts=3)
    delays = []
    for _ in range(3):
        Job.objects.filter(pk=job.pk).update(run_after=timezone.now())
        lifecycle.promote_due()
        claimed = claim_one()
        before = timezone.now()
        lifecycle.finish(WORKER, [failure(claimed)])
        job.refresh_from_db()
        delays.append((job.run_after - before).total_seconds())
    assert job.status == Status.DEAD
    assert 1.9 < delays[0] < 2.5 and 3.9 < delays[1] < 4.5
    letter = DeadLetter.objects.get(job=job)
    assert (letter.reason, letter.error_type) == ("attempts exhausted", "builtins.RuntimeError")
    assert list(job.attempt_history.values_list("number", flat=True)) == [1, 2, 3]


def test_a_non_retryable_failure_dies_at_once():
    make_job("tests.tasks.fail_permanently")
    claimed = claim_one()
    lifecycle.finish(WORKER, [failure(claimed, retryable=False)])
    assert Job.objects.get(pk=claimed.id).status == Status.DEAD
    assert DeadLetter.objects.get(job_id=claimed.id).reason == "not retryable"


def test_a_late_outcome_from_an_old_attempt_changes_nothing():
    make_job()
    first = claim_one()
    Job.objects.filter(pk=first.id).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert lifecycle.recover_lost() == 1
    Job.objects.filter(pk=first.id).update(run_after=timezone.now())
    lifecycle.promote_due()
    second = claim_one("other-worker")
    assert lifecycle.finish(WORKER, [finished(first)]) == set()
    job = Job.objects.get(pk=first.id)
    assert (job.status, job.attempts, job.worker_id) == (Status.RUNNING, second.attempt, "other-worker")


def test_a_duplicate_outcome_is_recorded_once():
    make_job()
    claimed = claim_one()
    lifecycle.finish(WORKER, [finished(claimed)])
    assert lifecycle.finish(WORKER, [finished(claimed, Outcome.FAILED, error_type="X")]) == set()
    assert Job.objects.get(pk=claimed.id).status == Status.SUCCEEDED
    assert Attempt.objects.count() == 1


def test_finish_records_a_mixed_batch():
    for _ in range(3):
        make_job()
    a, b, c = start_claimed(WORKER, None, 3)
    assert lifecycle.finish(WORKER, [finished(a), failure(b), finished(c, result_json='{"x": 1}')]) == {
        a.id,
        b.id,
        c.id,
    }
    assert Job.objects.get(pk=c.id).result == {"x": 1}
    assert Job.objects.get(pk=b.id).status == Status.SCHEDULED


# --- leases, heartbeats, recovery --------------------------------------------------


def test_renewing_leases_extends_them_and_reports_held_jobs():
    register()
    make_job()
    claimed = claim_one()
    Job.objects.filter(pk=claimed.id).update(lease_expires_at=timezone.now())
    assert lifecycle.renew_leases(WORKER, {claimed.id: claimed.attempt}) == {claimed.id}
    assert Job.objects.get(pk=claimed.id).lease_expires_at > timezone.now() + timedelta(seconds=5)


def test_renewing_leases_reports_a_cancelled_job_as_no_longer_held():
    register()
    make_job()
    claimed = claim_one()
    lifecycle.cancel(claimed.id)
    assert lifecycle.renew_leases(WORKER, {claimed.id: claimed.attempt}) == set()


def test_a_heartbeat_keeps_a_worker_alive():
    worker = register()
    Worker.objects.filter(pk=worker.pk).update(expires_at=timezone.now())
    lifecycle.heartbeat(WORKER)
    assert Worker.objects.get(pk=worker.pk).expires_at > timezone.now() + timedelta(seconds=5)


def test_a_silent_worker_is_lost_and_its_jobs_recovered():
    register()
    make_job()
    claimed = claim_one()
    Worker.objects.filter(id=WORKER).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert lifecycle.recover_lost() == 1
    lost = Worker.objects.get(id=WORKER)
    assert (lost.status, lost.jobs_failed) == ("lost", 1)
    job = Job.objects.get(pk=claimed.id)
    assert job.status == Status.SCHEDULED
    attempt = Attempt.objects.get(job=job)
    assert (attempt.outcome, attempt.error_type) == (Outcome.LOST, error_path(WorkerLost))


def test_a_lost_worker_and_its_recovered_jobs_are_logged_once(caplog):
    register()
    make_job()
    claim_one()
    Worker.objects.filter(id=WORKER).update(expires_at=timezone.now() - timedelta(seconds=1))
    with caplog.at_level("WARNING", logger="queues.broker"):
        lifecycle.recover_lost()
        lifecycle.recover_lost()
    assert [record.getMessage().split(":")[0] for record in caplog.records] == [
        f"worker {WORKER} is lost",
        "recovered 1 jobs of lost workers or expired leases (WorkerLost)",
    ]


def test_release_returns_a_job_without_counting_the_attempt():
    make_job()
    (claimed,) = lifecycle.claim(WORKER, None, 1)
    assert lifecycle.release(WORKER, [claimed.id]) == 1
    job = Job.objects.get(pk=claimed.id)
    assert (job.status, job.attempts) == (Status.QUEUED, 0)


def test_a_cut_attempt_returns_its_job_with_the_attempt_recorded_but_not_counted():
    make_job(max_attempts=2)
    claimed = claim_one()
    cut = finished(claimed, Outcome.LOST, error_type=error_path(WorkerShutdown))
    assert lifecycle.requeue_cut(WORKER, [cut]) == {claimed.id}
    job = Job.objects.get(pk=claimed.id)
    assert job.status == Status.QUEUED
    history = list(Attempt.objects.filter(job=job).values_list("number", "outcome", "error_type"))
    assert history == [(1, Outcome.LOST, error_path(WorkerShutdown))]
    again = claim_one()
    assert again.attempt == 2 and again.has_attempts_left, "attempt 2 is the first of the two counted"


def test_a_stale_cut_changes_nothing():
    make_job()
    claimed = claim_one()
    lifecycle.finish(WORKER, [finished(claimed)])
    assert (
        lifecycle.requeue_cut(
            WORKER, [finished(claimed, Outcome.LOST, error_type=error_path(WorkerShutdown))]
        )
        == set()
    )
    assert Job.objects.get(pk=claimed.id).status == Status.SUCCEEDED
    assert list(Attempt.objects.values_list("outcome", flat=True)) == [Outcome.SUCCEEDED]


def test_progress_is_stored_for_the_running_attempt_only():
    make_job()
    claimed = claim_one()
    assert lifecycle.report_progress(claimed.id, claimed.attempt, 40, "resizing")
    assert not lifecycle.report_progress(claimed.id, claimed.attempt + 1, 50)
    job = Job.objects.get(pk=claimed.id)
    assert (job.progress, job.progress_message) == (40, "resizing")


def test_progress_out_of_range_is_refused():
    with pytest.raises(InvalidJob):
        lifecycle.report_progress(1, 1, 120)


# --- operator actions --------------------------------------------------------------


def test_cancel_a_queued_job():
    job = make_job()
    assert lifecycle.cancel(job.id).status == Status.CANCELLED
    assert start_claimed(WORKER, None, 1) == []


def test_cancel_a_finished_job_is_refused():
    make_job()
    claimed = claim_one()
    lifecycle.finish(WORKER, [finished(claimed)])
    with pytest.raises(JobStateError, match="it is succeeded"):
        lifecycle.cancel(claimed.id)


def test_actions_on_an_unknown_job_raise_not_found():
    for action in (lifecycle.cancel, lifecycle.retry, lifecycle.replay):
        with pytest.raises(JobNotFound):
            action(987654)


def test_replay_requeues_a_dead_job_with_a_fresh_budget():
    make_job("tests.tasks.fail", max_attempts=1)
    claimed = claim_one()
    lifecycle.finish(WORKER, [failure(claimed)])
    job = lifecycle.replay(claimed.id, by="alice")
    assert job.status == Status.QUEUED and job.attempt_offset == 1
    letter = DeadLetter.objects.get(job=job)
    assert letter.replayed_by == "alice" and letter.replayed_at is not None
    again = claim_one()
    assert again.attempt == 2 and again.has_attempts_left is False


def test_replaying_a_live_job_is_refused():
    job = make_job()
    with pytest.raises(JobStateError, match="replay"):
        lifecycle.replay(job.id)


def test_replay_many_replays_only_dead_jobs():
    make_job("tests.tasks.fail", max_attempts=1)
    make_job("tests.tasks.fail", max_attempts=1)
    live = make_job()
    for claimed in start_claimed(WORKER, None, 2):
        lifecycle.finish(WORKER, [failure(claimed)])
    assert lifecycle.replay_many(Job.objects.all(), by="bob") == 2
    assert Job.objects.get(pk=live.pk).status == Status.QUEUED


def test_retry_a_succeeded_job_runs_it_again():
    make_job()
    claimed = claim_one()
    lifecycle.finish(WORKER, [finished(claimed)])
    assert lifecycle.retry(claimed.id).status == Status.QUEUED
    assert claim_one().attempt == 2


def test_retry_a_scheduled_job_runs_it_now():
    job = make_job(run_after=timezone.now() + timedelta(hours=1))
    lifecycle.retry(job.id)
    assert claim_one().id == job.id


def test_purge_deletes_only_waiting_jobs():
    make_job()
    make_job()
    running = make_job()
    Job.objects.filter(pk=running.pk).update(status=Status.RUNNING)
    assert lifecycle.purge_queue("default") == 2
    assert list(Job.objects.values_list("pk", flat=True)) == [running.pk]


def test_delete_leaves_running_jobs_alone():
    job = make_job()
    claimed = claim_one()
    other = make_job()
    assert lifecycle.delete_jobs([job.id, other.id]) == 1
    assert Job.objects.filter(pk=claimed.id).exists()


def test_promote_moves_due_scheduled_jobs_to_queued():
    job = make_job(run_after=timezone.now() + timedelta(seconds=30))
    Job.objects.filter(pk=job.pk).update(run_after=timezone.now() - timedelta(seconds=1))
    assert lifecycle.promote_due() == 1
    assert Job.objects.get(pk=job.pk).status == Status.QUEUED


# --- retention ---------------------------------------------------------------------


def test_prune_deletes_finished_jobs_past_retention_in_batches():
    make_queue("default", retention=timedelta(days=1))
    old = timezone.now() - timedelta(days=2)
    jobs = [make_job() for _ in range(5)]
    Job.objects.filter(pk__in=[j.pk for j in jobs]).update(status=Status.SUCCEEDED, finished_at=old)
    recent = make_job()
    Job.objects.filter(pk=recent.pk).update(status=Status.SUCCEEDED, finished_at=timezone.now())
    assert lifecycle.prune_finished(batch_size=3) == 3
    assert lifecycle.prune_finished(batch_size=3) == 2
    assert lifecycle.prune_finished(batch_size=3) == 0
    assert list(Job.objects.values_list("pk", flat=True)) == [recent.pk]


def test_prune_keeps_dead_jobs_for_thirty_days():
    job = make_job()
    Job.objects.filter(pk=job.pk).update(status=Status.DEAD, finished_at=timezone.now() - timedelta(days=10))
    assert lifecycle.prune_finished() == 0
    Job.objects.filter(pk=job.pk).update(finished_at=timezone.now() - timedelta(days=31))
    assert lifecycle.prune_finished() == 1


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [34, 5000])
def test_arguments_nested_past_the_limit_are_refused(depth):
    with pytest.raises(InvalidJob, match="args nests arrays and objects more than 32 levels") as error:
        lifecycle.enqueue(values.JobSpec(task_path="tests.tasks.noop", args=[_nested(depth)]))
    assert error.value.field == "args"
    assert not Job.objects.exists()
