"""The chaos suite (bench/chaos.py) at CI sizes: processes and servers broken for real.

Each test runs one scenario against real workers, web nodes and database servers,
then proves the delivery promises from the database: every job succeeded, none is
stuck running, and a job ran more than once only if its attempt history records
the earlier attempt as killed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from bench import chaos, ledger
from queues.exceptions import WorkerChildDied, WorkerLost, error_path
from queues.models import Attempt, Job
from queues.states import Outcome, Status

from . import processes

pytestmark = [pytest.mark.chaos, pytest.mark.process, pytest.mark.django_db(transaction=True)]
postgres_only = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="cluster mode is PostgreSQL's")
REDIS_URL = os.environ.get("TASKWEB_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")


@pytest.fixture
def url() -> Iterator[str]:
    yield processes.test_database_url()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {ledger.RUNS_TABLE}")


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return tmp_path / "logs"


def reruns_were_all_killed_attempts() -> bool:
    """The same proof as the ledger's, through the models: an earlier attempt of a
    succeeded job ended only because its worker was lost or its child stopped."""
    earlier = Attempt.objects.exclude(outcome=Outcome.SUCCEEDED)
    return (
        not earlier.exclude(outcome__in=[Outcome.LOST, Outcome.TIMEOUT])
        .exclude(error_type=error_path(WorkerChildDied))
        .exists()
    )


@postgres_only
def test_every_job_succeeds_while_a_random_worker_is_sigkilled_every_two_seconds(url, logs):
    summary = chaos.kill_workers(url, logs, jobs=3000, workers=4, every=2.0)
    assert summary.ok, summary.explain()
    assert summary.notes["kills"] >= 3, "the drain outlived several kills"
    assert Attempt.objects.filter(outcome=Outcome.LOST, error_type=error_path(WorkerLost)).exists()
    assert not Job.objects.exclude(status=Status.SUCCEEDED).exists()
    assert reruns_were_all_killed_attempts()


@postgres_only
def test_workers_and_a_web_node_carry_on_after_postgresql_restarts_mid_drain(logs):
    summary = chaos.restart_postgres(logs, jobs=1500)
    assert summary.ok, summary.explain()
    assert 0 < summary.notes["done_before_restart"] < 1500
    assert summary.notes["health_while_down"] == 503


@postgres_only
@pytest.mark.parametrize("redis_url", [REDIS_URL, None], ids=["channels-redis", "in-memory"])
def test_a_finished_job_shows_on_sockets_of_both_web_nodes(url, logs, redis_url):
    summary = chaos.two_web_nodes(url, logs, jobs=30, redis_url=redis_url)
    assert summary.ok, summary.explain()
    assert summary.notes["node1_shown"] == summary.notes["node2_shown"] == 30


def test_a_thawed_worker_cannot_overwrite_the_outcome_of_the_attempt_that_replaced_it(url, logs):
    summary = chaos.pause_worker(url, logs, jobs=2)
    assert summary.ok, summary.explain()
    for job in Job.objects.all():
        history = list(job.attempt_history.order_by("number").values_list("number", "outcome", "worker_id"))
        assert [h[:2] for h in history] == [(1, Outcome.LOST), (2, Outcome.SUCCEEDED)]
        assert job.worker_id == history[1][2] != history[0][2], (
            "the job stays with the newer attempt's worker"
        )
        assert job.result == "attempt 2"


@pytest.mark.skipif("connection.vendor != 'sqlite'", reason="one SQLite file shared by processes")
def test_sqlite_file_shared_by_two_workers_and_the_web_process_loses_nothing(url, logs):
    summary = chaos.sqlite_one_file(url, logs, jobs=2000, api_jobs=100)
    assert summary.ok, summary.explain()
    assert summary.notes["user_errors"] == 0 and summary.notes["requests"] > 100


@pytest.mark.skipif("connection.vendor != 'sqlite'", reason="runs once per test command")
def test_the_suite_runs_as_a_script_and_prints_one_line_per_scenario(tmp_path):
    done = subprocess.run(
        [sys.executable, "bench/chaos.py", "--only", "5", "--sqlite-jobs", "300", "--work", str(tmp_path)],
        cwd=processes.ROOT,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    line = done.stdout.splitlines()[0]
    assert line.startswith("5 sqlite-one-file: jobs=300 lost=0 duplicated=0 stuck=0 time=")
