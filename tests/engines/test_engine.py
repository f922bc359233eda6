"""The engine contract, run on whichever database this test run uses (SQLite or PostgreSQL).

Each named operation is called as the lifecycle calls it and judged by the rows it
changes and the typed rows it returns; the claim's plan is checked on the database's
own EXPLAIN.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from queues import lifecycle, values
from queues.engines import get_engine
from queues.engines.rows import ClaimQuery, ClaimRow, Succeeded
from queues.models import Attempt, Circuit, CircuitState, Job
from queues.states import Outcome, Status

from ..factories import make_job, make_queue

pytestmark = pytest.mark.django_db
WORKER = "w-engine"


def claim(limit: int = 10, raw: bool = False, queues: list[str] | None = None) -> list[ClaimRow]:
    now = timezone.now()
    return get_engine().claim(ClaimQuery(WORKER, queues, limit, now, now + timedelta(minutes=1), raw))


def test_claim_returns_named_rows_of_the_jobs_it_reserved():
    job = make_job(priority=5, max_attempts=3, timeout=9)
    (row,) = claim()
    assert isinstance(row, ClaimRow)
    assert (row.id, row.task_path, row.attempt, row.max_attempts, row.timeout, row.priority) == (
        job.pk,
        "tests.tasks.noop",
        1,
        3,
        9,
        5,
    )
    assert row.queue_id == job.queue_id
    job.refresh_from_db()
    assert (job.status, job.worker_id, job.started_at, job.attempts) == (Status.RESERVED, WORKER, None, 1)


def test_a_raw_claim_starts_its_job_at_once():
    job = make_job(Job.RAW_TASK, args=["payload"])
    (row,) = claim(raw=True)
    job.refresh_from_db()
    assert (row.id, job.status) == (job.pk, Status.RUNNING)
    assert job.started_at is not None


def test_claim_takes_the_highest_priority_then_the_oldest_and_stops_at_its_limit():
    low, high, normal, later = (make_job(priority=p) for p in (-10, 10, 0, 0))
    assert {row.id for row in claim(limit=2)} == {high.pk, normal.pk}
    assert {row.id for row in claim(limit=2)} == {later.pk, low.pk}
    assert claim(limit=2) == []


def test_claim_never_takes_scheduled_or_held_jobs_or_those_of_paused_queues():
    make_job(run_after=timezone.now() + timedelta(hours=1))
    make_queue("stopped", paused=True)
    make_job(queue="stopped")
    taken = make_job()
    assert [row.id for row in claim()] == [taken.pk]
    assert claim() == [], "a reserved job is not claimed again"


def test_claim_reads_only_the_named_queues():
    make_queue("mail")
    mail = make_job(queue="mail")
    make_job()
    assert [row.id for row in claim(queues=["mail"])] == [mail.pk]


def test_start_marks_reserved_jobs_of_the_worker_running_from_the_given_time():
    mine, theirs = make_job(), make_job()
    claim(limit=1)
    now = timezone.now()
    get_engine().claim(ClaimQuery("other", None, 1, now, now))
    at = timezone.now()
    assert get_engine().start(WORKER, [mine.pk, theirs.pk], at) == {mine.pk}
    mine.refresh_from_db()
    assert (mine.status, mine.started_at) == (Status.RUNNING, at)
    assert Job.objects.get(pk=theirs.pk).status == Status.RESERVED


@pytest.mark.parametrize("honour_circuits", [True, False])
def test_start_honouring_circuits_leaves_a_job_of_a_task_with_an_open_circuit_reserved(honour_circuits):
    broken, fine = make_job("tests.tasks.fail"), make_job("tests.tasks.noop")
    claim()
    Circuit.objects.create(
        task_path="tests.tasks.fail", state=CircuitState.OPEN, retry_at=timezone.now() + timedelta(minutes=5)
    )
    started = get_engine().start(WORKER, [broken.pk, fine.pk], timezone.now(), honour_circuits)
    assert started == ({fine.pk} if honour_circuits else {broken.pk, fine.pk})
    expected = Status.RESERVED if honour_circuits else Status.RUNNING
    assert Job.objects.get(pk=broken.pk).status == expected


def test_start_of_no_jobs_is_no_statement():
    assert get_engine().start(WORKER, [], timezone.now()) == set()


def succeeded(row: ClaimRow, result: str | None = "1") -> Succeeded:
    now = timezone.now()
    return Succeeded(row.id, row.attempt, result, now - timedelta(seconds=2), now, 2.0)


def test_succeed_finishes_running_jobs_and_records_their_attempts():
    make_job()
    (row,) = claim()
    get_engine().start(WORKER, [row.id], timezone.now())
    assert get_engine().succeed(WORKER, [succeeded(row, '{"a": 1}')], timezone.now()) == {row.id}
    job = Job.objects.get(pk=row.id)
    assert (job.status, job.result, job.lease_expires_at, job.progress) == (
        Status.SUCCEEDED,
        {"a": 1},
        None,
        100,
    )
    attempt = Attempt.objects.get(job_id=row.id)
    assert (attempt.number, attempt.worker_id, attempt.outcome, attempt.duration) == (
        1,
        WORKER,
        Outcome.SUCCEEDED,
        2.0,
    )


def test_succeed_changes_nothing_for_a_job_not_running_for_that_attempt_of_that_worker():
    make_job(), make_job()
    reserved, other = claim()
    get_engine().start(WORKER, [other.id], timezone.now())
    stale = Succeeded(other.id, other.attempt + 1, None, timezone.now(), timezone.now(), 0.0)
    assert get_engine().succeed(WORKER, [succeeded(reserved), stale], timezone.now()) == set()
    assert get_engine().succeed("someone-else", [succeeded(other)], timezone.now()) == set()
    assert not Attempt.objects.exists()


def test_insert_jobs_returns_the_new_ids_in_order():
    jobs = lifecycle.enqueue_many(
        [values.JobSpec(task_path="tests.tasks.add", args=(i, i)) for i in range(5)]
    )
    ids = [job_id for job_id, _ in jobs]
    assert [Job.objects.get(pk=job_id).args for job_id in ids] == [[i, i] for i in range(5)]


def plan_of_claim() -> str:
    now = timezone.now()
    sql, params = get_engine().claim_statement(ClaimQuery("w", None, 10, now, now))
    explain = "EXPLAIN " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
    with connection.cursor() as cursor:
        cursor.execute(explain + sql, params)
        return " ".join(str(row) for row in cursor.fetchall())


def forget_statistics() -> None:
    """Put the job table back as a table no ANALYZE ever saw (inside this test's transaction)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if not cursor.fetchone()[0]:
            pytest.skip("forgetting a table's statistics needs a superuser")
        cursor.execute("DELETE FROM pg_statistic WHERE starelid = 'queues_job'::regclass")
        cursor.execute("UPDATE pg_class SET reltuples = -1, relpages = 0 WHERE oid = 'queues_job'::regclass")


def fill(queued: int, finished: int = 0) -> None:
    jobs = lifecycle.enqueue_many(
        [values.JobSpec(task_path="tests.tasks.noop") for _ in range(queued + finished)]
    )
    Job.objects.filter(pk__in=[job_id for job_id, _ in jobs[:finished]]).update(status=Status.SUCCEEDED)


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL's planner")
def test_the_claim_reads_the_partial_index_of_a_big_table_never_analysed():
    fill(queued=20_000, finished=5_000)
    forget_statistics()
    assert "job_claimable" in plan_of_claim()


@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL's planner")
def test_the_claim_reads_the_partial_index_of_a_table_analysed_while_empty():
    Job.objects.all().delete()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE queues_job")
    plan_empty = plan_of_claim()
    fill(queued=20_000)
    assert "job_claimable" in plan_empty and "job_claimable" in plan_of_claim()


def test_the_claim_reads_the_partial_index_after_analyze():
    fill(queued=3_000, finished=1_000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    assert "job_claimable" in plan_of_claim()
