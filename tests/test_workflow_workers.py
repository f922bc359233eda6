"""Workflows drained by real runworker processes, on SQLite and PostgreSQL.

Each step logs "start <label>" and "end <label>" to one file (tests/tasks.py), so the
order in which real workers ran them can be checked against the dependencies.
"""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import pytest

from queues.models import Job, Worker, Workflow, WorkflowStatus
from queues.states import Status
from queues.workflows import chain, group, workflow

from . import tasks
from .processes import WorkerProcess, task_log, wait_until

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def run_log(tmp_path: Path) -> Path:
    return task_log(tmp_path)


def lines(run_log: Path) -> list[str]:
    return run_log.read_text().splitlines()


def finished(*runs) -> bool:
    return all(run.refresh().status != WorkflowStatus.RUNNING for run in runs)


def drain(tmp_path: Path, run_log: Path, runs: list, workers: int = 2, timeout: float = 120) -> None:
    """Real workers until every workflow and every callback job has finished."""
    procs = [WorkerProcess("--concurrency", "4", log_dir=tmp_path, task_log=run_log) for _ in range(workers)]
    try:
        wait_until(lambda: finished(*runs), timeout=timeout)
        live = Job.objects.filter(status__in=[Status.QUEUED, Status.RUNNING])
        wait_until(lambda: not live.exists(), timeout=timeout)
        # Others may have drained it all before a slow one started: SIGTERM must find each
        # worker running (registered, its signal handlers in place), not still importing.
        registered = Worker.objects.filter(pid__in=[proc.pid for proc in procs])
        wait_until(lambda: registered.count() == workers, timeout=timeout)
    finally:
        codes = [proc.stop() for proc in procs]
    assert codes == [0] * workers, [proc.output() for proc in procs]


def test_no_step_starts_before_every_dependency_has_ended(tmp_path, run_log):
    run = workflow(
        chain(
            tasks.step_log.s("a", 0.05),
            group(tasks.step_log.s(f"b{i}", 0.02) for i in range(8)),
            tasks.step_log.s("c"),
            group(tasks.step_log.s(f"d{i}") for i in range(4)),
        ),
        chain(tasks.step_log.s("x1", 0.02), tasks.step_log.s("x2")),
        then=tasks.step_log.s("report"),
    ).enqueue()
    drain(tmp_path, run_log, [run])
    log = lines(run_log)
    position = {line: index for index, line in enumerate(log)}
    assert len(log) == 2 * 17, "every step ran once"
    before = {
        **{f"b{i}": ["a"] for i in range(8)},
        "c": [f"b{i}" for i in range(8)],
        **{f"d{i}": ["c"] for i in range(4)},
        "x2": ["x1"],
        "report": [f"d{i}" for i in range(4)] + ["x2"],
    }
    for label, deps in before.items():
        for dep in deps:
            assert position[f"end {dep}"] < position[f"start {label}"], f"{label} started before {dep} ended"
    assert run.status == WorkflowStatus.SUCCEEDED


def test_each_callback_fires_once_when_many_workers_finish_the_last_steps_together(tmp_path, run_log):
    runs = [
        workflow(
            group(tasks.step_log.s(f"{n}-{i}") for i in range(40)),
            on_success=tasks.workflow_callback.s("success"),
            on_complete=tasks.workflow_callback.s("complete"),
            on_death=tasks.workflow_callback.s("death"),
        ).enqueue()
        for n in range(5)
    ]
    drain(tmp_path, run_log, runs, workers=3)
    fired = Counter(line for line in lines(run_log) if line.startswith("callback"))
    expected = {f"callback {kind} {run.id}" for run in runs for kind in ("success", "complete")}
    assert set(fired) == expected
    assert set(fired.values()) == {1}, "no callback ran twice"


def test_a_death_reaches_every_dependent_and_nothing_after_it_runs(tmp_path, run_log):
    run = workflow(
        chain(
            tasks.step_log.s("a"),
            tasks.fail_permanently.s(),
            group(tasks.step_log.s(f"b{i}") for i in range(5)),
            chain(tasks.step_log.s("c"), tasks.step_log.s("d")),
        ),
        on_death=tasks.workflow_callback.s("death"),
        on_complete=tasks.workflow_callback.s("complete"),
    ).enqueue()
    drain(tmp_path, run_log, [run])
    assert sorted(lines(run_log)) == sorted(
        ["start a", "end a", f"callback death {run.id}", f"callback complete {run.id}"]
    )
    statuses = Counter(Job.objects.filter(step__workflow=run.workflow).values_list("status", flat=True))
    assert statuses == {Status.SUCCEEDED: 1, Status.DEAD: 1, Status.CANCELLED: 7}
    assert run.status == WorkflowStatus.FAILED


def test_a_step_of_a_killed_worker_is_recovered_and_the_workflow_completes(tmp_path, run_log):
    release = tmp_path / "release"
    run = workflow(
        chain(tasks.step_log_after_file.s("slow", str(release)), tasks.step_log.s("after")),
        on_success=tasks.workflow_callback.s("success"),
    ).enqueue()
    doomed = WorkerProcess("--concurrency", "1", log_dir=tmp_path, task_log=run_log)
    wait_until(lambda: "start slow" in lines(run_log))
    doomed.send(signal.SIGKILL)
    doomed.wait()
    release.touch()
    survivor = WorkerProcess(
        "--concurrency", "2", log_dir=tmp_path, task_log=run_log, QUEUES_RETRY_BASE="0.1"
    )
    try:
        wait_until(lambda: f"callback success {run.id}" in lines(run_log), timeout=90)
    finally:
        code = survivor.stop()
    assert code == 0, survivor.output()
    log = lines(run_log)
    assert log.count("start slow") == 2, "the killed attempt, then the recovered one"
    assert log.count("start after") == 1
    assert log.index("start after") > log.index("end slow")
    assert run.refresh().status == WorkflowStatus.SUCCEEDED


def test_a_workflow_of_10000_jobs_is_drained(tmp_path, run_log):
    run = workflow(
        group(tasks.noop.s() for _ in range(9999)),
        then=tasks.step_log.s("report"),
        on_success=tasks.workflow_callback.s("success"),
    ).enqueue()
    drain(tmp_path, run_log, [run], timeout=280)
    assert run.progress == (10000, 0, 10000)
    assert lines(run_log) == ["start report", "end report", f"callback success {run.id}"]
    assert Workflow.objects.get(id=run.id).finished_at is not None
