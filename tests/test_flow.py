"""Flow control: queue concurrency and rate limits in the claim, circuit breakers per task."""

from __future__ import annotations

import math
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from queues import flow_control, lifecycle, values
from queues.engines import get_engine
from queues.engines.rows import ClaimQuery
from queues.models import Circuit, CircuitState, Job, Queue, Worker
from queues.states import Outcome, Status

from .factories import make_job, make_queue, start_claimed
from .processes import WorkerProcess, wait_until

BREAKER = {
    "QUEUES_CIRCUIT_FAILURE_RATIO": "0.5",
    "QUEUES_CIRCUIT_MIN_CALLS": "4",
    "QUEUES_CIRCUIT_COOLDOWN": "600",
}


@pytest.fixture
def breaker(settings):
    for name, value in BREAKER.items():
        setattr(settings, name, float(value))


def claim(worker_id: str = "w1", limit: int = 10, queues: list[str] | None = None) -> list[values.ClaimedJob]:
    return start_claimed(worker_id, queues, limit)


def finish(jobs: list[values.ClaimedJob], outcome: Outcome) -> None:
    now = timezone.now()
    lifecycle.finish(
        "w1",
        [
            values.Finished(job=job, outcome=outcome, started_at=now, finished_at=now, error_type="E")
            for job in jobs
        ],
    )


# --- concurrency and rate limit in the claim ---------------------------------------


@pytest.mark.django_db
def test_a_queue_at_its_concurrency_gives_no_more_jobs_to_any_worker():
    make_queue("pdf", concurrency=2)
    for _ in range(5):
        make_job(queue="pdf")
    assert len(claim("w1", limit=1)) == 1
    assert len(claim("w2", limit=10)) == 1
    assert claim("w3") == []
    assert Job.objects.filter(status=Status.RUNNING).count() == 2


@pytest.mark.django_db
def test_a_finished_job_frees_its_place_in_the_queue():
    make_queue("pdf", concurrency=1)
    make_job(queue="pdf")
    make_job(queue="pdf")
    finish(claim(), Outcome.SUCCEEDED)
    assert len(claim()) == 1


@pytest.mark.django_db
def test_a_limited_queue_does_not_hold_back_other_queues():
    make_queue("pdf", concurrency=1)
    for _ in range(3):
        make_job(queue="pdf", priority=10)
    other = [make_job() for _ in range(3)]
    claimed = claim(limit=10)
    assert sorted(job.queue_name for job in claimed) == ["default"] * 3 + ["pdf"]
    assert {job.id for job in claimed} >= {job.id for job in other}


@pytest.mark.django_db
def test_a_rate_limited_queue_starts_at_most_one_seconds_worth_at_once():
    make_queue("mail", rate_limit=3)
    for _ in range(10):
        make_job(queue="mail")
    assert len(claim(limit=10)) == 3
    assert claim(limit=10) == []
    assert Queue.objects.get(name="mail").rate_tokens < 1


def test_the_token_bucket_refills_at_the_rate_up_to_one_second():
    start = timezone.now()
    assert flow_control.refill(2.0, None, None, start) == 2.0
    assert flow_control.refill(2.0, 0.0, start, start + timedelta(seconds=0.25)) == pytest.approx(0.5)
    assert flow_control.refill(2.0, 0.5, start, start + timedelta(seconds=10)) == 2.0
    assert flow_control.refill(0.5, 0.0, start, start + timedelta(seconds=10)) == 1.0


# --- circuit breaker ---------------------------------------------------------------


def trip(jobs: int, cooled_down: bool = False) -> None:
    """Enqueue ``jobs`` failing jobs and fail 4 of them: the breaker opens."""
    for _ in range(jobs):
        make_job("tests.tasks.fail", max_attempts=1)
    finish(claim(limit=4), Outcome.FAILED)
    if cooled_down:
        Circuit.objects.update(retry_at=timezone.now())


@pytest.mark.django_db
def test_the_breaker_is_off_by_default():
    for _ in range(5):
        make_job("tests.tasks.fail")
    finish(claim(limit=4), Outcome.FAILED)
    assert not Circuit.objects.exists()


@pytest.mark.django_db
def test_a_circuit_opens_when_the_failure_ratio_is_reached_and_its_task_is_not_claimed(breaker):
    trip(6)
    circuit = Circuit.objects.get(task_path="tests.tasks.fail")
    assert circuit.state == CircuitState.OPEN
    assert flow_control.open_circuits() == [circuit]
    other = make_job()
    assert [job.id for job in claim()] == [other.id]


@pytest.mark.django_db
def test_a_circuit_stays_closed_below_the_ratio(breaker):
    for _ in range(4):
        make_job("tests.tasks.fail")
    jobs = claim(limit=4)
    finish(jobs[:1], Outcome.FAILED)
    finish(jobs[1:], Outcome.SUCCEEDED)
    assert Circuit.objects.get().state == CircuitState.CLOSED


@pytest.mark.django_db
def test_after_the_cooldown_exactly_one_probe_is_claimed(breaker):
    trip(8, cooled_down=True)
    assert len(claim("w1")) == 1
    assert Circuit.objects.get().state == CircuitState.HALF_OPEN
    assert claim("w2") == []


@pytest.mark.parametrize(
    ("outcome", "state"), [(Outcome.SUCCEEDED, CircuitState.CLOSED), (Outcome.FAILED, CircuitState.OPEN)]
)
@pytest.mark.django_db
def test_the_probe_outcome_closes_or_reopens_the_circuit(breaker, outcome, state):
    trip(8, cooled_down=True)
    finish(claim(), outcome)
    circuit = Circuit.objects.get()
    assert circuit.state == state
    assert len(claim()) == (3 if state == CircuitState.CLOSED else 0)


@pytest.mark.django_db
def test_a_probe_with_nothing_to_run_leaves_the_circuit_open_for_the_next_claim(breaker):
    trip(4, cooled_down=True)
    assert claim() == []
    assert Circuit.objects.get().state == CircuitState.OPEN


@pytest.mark.django_db
def test_an_operator_can_close_a_circuit(breaker):
    trip(5)
    assert flow_control.reset_circuit("tests.tasks.fail")
    assert len(claim()) == 1
    assert not flow_control.reset_circuit("tests.tasks.fail")


# --- with real workers -------------------------------------------------------------


def intervals(path: Path) -> list[tuple[float, float]]:
    """(start, end) of each run as logged by the jobs themselves."""
    return [tuple(map(float, line.split()[1:3])) for line in path.read_text().splitlines()]


def most_at_once(spans: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = peak = 0
    for _, change in events:
        running += change
        peak = max(peak, running)
    return peak


@pytest.mark.process
@pytest.mark.django_db(transaction=True)
def test_workers_together_never_run_more_than_the_queue_concurrency(tmp_path):
    make_queue("pdf", concurrency=2)
    log = tmp_path / "spans.log"
    log.touch()
    for _ in range(12):
        make_job("tests.tasks.timed", queue="pdf", kwargs={"seconds": 0.3})
    workers = [
        WorkerProcess("--concurrency", "4", log_dir=tmp_path, TASKWEB_TEST_LOG=str(log)) for _ in range(2)
    ]
    try:
        wait_until(lambda: Job.objects.filter(status=Status.SUCCEEDED).count() == 12, timeout=60)
    finally:
        for worker in workers:
            worker.stop()
    spans = intervals(log)
    assert len(spans) == 12
    assert most_at_once(spans) == 2


@pytest.mark.process
@pytest.mark.django_db(transaction=True)
def test_workers_together_hold_the_queue_rate_limit(tmp_path):
    rate = 5.0
    make_queue("mail", rate_limit=rate)
    lifecycle.enqueue_many([values.JobSpec(task_path="tests.tasks.noop", queue="mail") for _ in range(30)])
    workers = [WorkerProcess("--concurrency", "4", log_dir=tmp_path) for _ in range(2)]
    try:
        wait_until(lambda: Job.objects.filter(status=Status.SUCCEEDED).count() == 30, timeout=60)
    finally:
        for worker in workers:
            worker.stop()
    starts = sorted(t.timestamp() for t in Job.objects.values_list("started_at", flat=True))
    # A token bucket of one second's worth: any window of w seconds holds at most
    # rate * w + rate starts. Checked over every window that begins at a start.
    for i, first in enumerate(starts):
        for window in (1.0, 2.0, 4.0):
            inside = sum(1 for t in starts[i:] if t < first + window)
            assert inside <= math.floor(rate * window + rate), (window, inside)
    assert starts[-1] - starts[0] >= (30 - rate) / rate - 0.1


@pytest.mark.process
@pytest.mark.django_db(transaction=True)
def test_a_circuit_opens_on_failures_and_closes_after_a_good_probe(tmp_path):
    flag = tmp_path / "broken"
    flag.touch()
    for _ in range(20):
        make_job("tests.tasks.fail_while_file_exists", kwargs={"path": str(flag)}, max_attempts=1)
    worker = WorkerProcess("--concurrency", "1", log_dir=tmp_path, **BREAKER)
    try:
        wait_until(lambda: Circuit.objects.filter(state=CircuitState.OPEN).exists())
        started = Job.objects.filter(started_at__isnull=False)
        attempted = started.count()
        # While open, the worker keeps heartbeating and claiming but starts none of them,
        # not even those it had claimed ahead before the circuit opened.
        later = timezone.now() + timedelta(seconds=2)
        wait_until(lambda: Worker.objects.filter(last_heartbeat__gt=later).exists())
        assert started.count() == attempted
        assert attempted < 20
        assert not Job.objects.filter(status=Status.RESERVED).exists(), "claimed ahead: given back"
        flag.unlink()
        Circuit.objects.update(retry_at=timezone.now())  # the cool-down is over
        wait_until(lambda: Circuit.objects.get().state == CircuitState.CLOSED)
        wait_until(lambda: Job.objects.filter(status=Status.SUCCEEDED).count() == 20 - attempted)
    finally:
        worker.stop()


@pytest.mark.django_db
def test_the_flow_controlled_claim_still_reads_the_partial_index(breaker):
    make_queue("pdf", concurrency=3)
    make_queue("mail", rate_limit=2)
    specs = [
        values.JobSpec(task_path="tests.tasks.noop", queue=name) for name in ("default", "pdf", "mail")
    ] * 1500
    jobs = lifecycle.enqueue_many(specs)
    Job.objects.filter(pk__in=[job_id for job_id, _ in jobs[:1000]]).update(status=Status.SUCCEEDED)
    open_task = Circuit.objects.create(
        task_path="tests.tasks.fail", state=CircuitState.OPEN, retry_at=timezone.now()
    )
    now = timezone.now()
    limits = flow_control.ClaimLimits.load(None)
    limits.queue_budgets = {make_queue("pdf").pk: 2}
    limits.skip_queues = [make_queue("mail").pk]
    limits.skip_tasks = [open_task.task_path]
    sql, params = get_engine().claim_statement(ClaimQuery("w", None, 10, now, now, limits=limits))
    explain = "EXPLAIN " if connection.vendor == "postgresql" else "EXPLAIN QUERY PLAN "
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute(explain + sql, params)
        plan = " ".join(str(row) for row in cursor.fetchall())
    assert "job_claimable" in plan, plan
