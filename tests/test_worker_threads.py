"""``runworker --pool threads`` as a real process: jobs run side by side in threads of the
worker; a cancelled job is abandoned (a thread cannot be killed), its outcome refused, and a
fresh thread takes the slot. Timeouts: tests/test_worker.py runs its timeout test on both pools."""

from __future__ import annotations

from pathlib import Path

import pytest

from queues import lifecycle
from queues.models import Job
from queues.states import Status

from . import tasks
from .processes import WorkerProcess, wait_until
from .test_package import readme_commands

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]


def readme_thread_worker() -> list[str]:
    """The options of the README's thread-pool worker command, as written there."""
    (argv,) = [argv for argv in readme_commands("Workers", "python") if "--pool" in argv]
    return argv[3:]


def start(tmp_path: Path, *args: str, **env: str) -> WorkerProcess:
    return WorkerProcess(*args, log_dir=tmp_path, TASKWEB_TEST_LOG=str(tmp_path / "runs.log"), **env)


def started(tmp_path: Path) -> list[str]:
    log = tmp_path / "runs.log"
    return [line for line in log.read_text().splitlines() if line.startswith("start")] if log.exists() else []


def status_of(job_id: int | str) -> str:
    return Job.objects.get(pk=job_id).status


def test_the_readme_thread_worker_runs_jobs_side_by_side_inside_its_own_process(tmp_path):
    go = tmp_path / "go"
    results = [tasks.pid_after_file.enqueue(str(go)) for _ in range(3)]
    worker = start(tmp_path, *readme_thread_worker(), "--burst")
    try:
        wait_until(lambda: len(started(tmp_path)) == 3, timeout=30)  # all three at once
        go.touch()
        assert worker.wait() == 0, worker.output()
    finally:
        worker.kill()
    assert {tasks.pid_after_file.get_result(r.id).return_value for r in results} == {worker.pid}


def test_a_cancelled_job_on_a_thread_is_abandoned_and_its_late_outcome_refused(tmp_path):
    go = tmp_path / "go"
    cancelled = tasks.pid_after_file.enqueue(str(go))
    worker = start(tmp_path, "--pool", "threads", "--concurrency", "1", QUEUES_HEARTBEAT_INTERVAL="0.2")
    try:
        wait_until(lambda: len(started(tmp_path)) == 1, timeout=30)
        lifecycle.cancel(int(cancelled.id))
        after = tasks.add.enqueue(2, 2)  # the one slot is free again, though the thread runs on
        wait_until(lambda: status_of(after.id) == Status.SUCCEEDED, timeout=30)
        go.touch()  # the abandoned job now returns; its outcome must not land
        next_one = tasks.add.enqueue(3, 3)
        wait_until(lambda: status_of(next_one.id) == Status.SUCCEEDED, timeout=30)
    finally:
        worker.stop()
    job = Job.objects.get(pk=cancelled.id)
    assert (job.status, job.result) == (Status.CANCELLED, None)
