"""Workflows through the Python API and the lifecycle: dependencies, chains, groups, batches.

Jobs run in this process through the claim and finish path a worker uses
(``queues.testing.run_jobs``); tests/test_workflow_workers.py runs real workers.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from queues import lifecycle
from queues.exceptions import InvalidJob, JobStateError, UnknownQueue, UnknownTask
from queues.models import Job, JobDependency, Workflow, WorkflowStatus, WorkflowStep
from queues.states import Status
from queues.testing import run_jobs
from queues.values import JobSpec, StepSpec
from queues.workflows import chain, get_workflow, group, workflow

from . import tasks
from .factories import make_queue

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "runs.log"
    path.touch()
    monkeypatch.setenv("TASKWEB_TEST_LOG", str(path))
    return path


def lines(run_log: Path) -> list[str]:
    return run_log.read_text().splitlines()


def statuses(run) -> dict[str, str]:
    return {step.name: step.job.status for step in run.workflow.steps.select_related("job")}


def test_steps_with_dependencies_are_blocked_and_never_claimed():
    run = workflow(chain(tasks.step_log.s("a"), tasks.step_log.s("b"), tasks.step_log.s("c"))).enqueue()
    assert statuses(run) == {"step_log": "queued", "step_log-2": "blocked", "step_log-3": "blocked"}
    claimed = lifecycle.claim("w1", None, 10)
    assert [job.id for job in claimed] == [run.job_ids["step_log"]]


def test_a_chain_runs_each_step_after_the_one_before(run_log):
    run = workflow(chain(tasks.step_log.s("a"), tasks.step_log.s("b"), tasks.step_log.s("c"))).enqueue()
    run_jobs()
    assert lines(run_log) == ["start a", "end a", "start b", "end b", "start c", "end c"]
    assert run.refresh().status == WorkflowStatus.SUCCEEDED
    assert run.progress == (3, 0, 3)


def test_then_waits_for_every_part(run_log):
    run = workflow(
        chain(tasks.step_log.s("a1"), tasks.step_log.s("a2")),
        group(tasks.step_log.s(f"b{i}") for i in range(3)),
        then=tasks.step_log.s("report").set(name="report"),
    ).enqueue()
    run_jobs()
    log = lines(run_log)
    assert log[-2:] == ["start report", "end report"]
    assert len(log) == 12
    deps = set(
        JobDependency.objects.filter(job_id=run.job_ids["report"]).values_list("depends_on_id", flat=True)
    )
    assert deps == {run.job_ids[name] for name in ("step_log-2", "step_log-3", "step_log-4", "step_log-5")}


def test_a_chain_passing_results_gives_each_step_the_result_before():
    run = workflow(
        chain(tasks.concat.s("x", "1"), tasks.concat.s("2"), tasks.concat.s("3"), pass_result=True)
    ).enqueue()
    run_jobs()
    assert run.result("concat-3").return_value == "x123"
    assert run.result("concat-3").args == ["x12", "3"]


def test_after_a_group_a_passed_result_is_the_list_of_the_group_results_in_order():
    run = workflow(
        chain(group(tasks.add.s(i, i) for i in range(4)), tasks.concat.s("!"), pass_result=True)
    ).enqueue()
    run_jobs()
    assert run.result("concat").return_value == "[0, 2, 4, 6]!"


def test_a_dead_step_cancels_every_dependent_with_the_reason(run_log):
    run = workflow(
        chain(
            tasks.fail_permanently.s(),
            tasks.step_log.s("b"),
            group(tasks.step_log.s("c"), tasks.step_log.s("d")),
        ),
        tasks.step_log.s("independent"),
    ).enqueue()
    run_jobs()
    dead_id = run.job_ids["fail_permanently"]
    assert statuses(run) == {
        "fail_permanently": "dead",
        "step_log": "cancelled",
        "step_log-2": "cancelled",
        "step_log-3": "cancelled",
        "step_log-4": "succeeded",
    }
    assert Job.objects.get(id=run.job_ids["step_log"]).last_error == f"dependency {dead_id} died"
    assert Job.objects.get(id=run.job_ids["step_log-2"]).last_error == (
        f"dependency {run.job_ids['step_log']} was cancelled"
    )
    assert lines(run_log) == ["start independent", "end independent"]
    assert run.refresh().status == WorkflowStatus.FAILED
    assert run.progress == (5, 4, 5)


def test_a_step_that_runs_anyway_runs_once_its_dependencies_finished_even_dead(run_log):
    run = workflow(
        chain(tasks.fail_permanently.s(), tasks.step_log.s("cleanup").set(run_anyway=True, name="cleanup"))
    ).enqueue()
    run_jobs()
    assert statuses(run) == {"fail_permanently": "dead", "cleanup": "succeeded"}


def test_callbacks_fire_once_each_with_the_workflow_id_first(run_log):
    run = workflow(
        group(tasks.step_log.s(str(i)) for i in range(5)),
        on_success=tasks.workflow_callback.s("success"),
        on_complete=tasks.workflow_callback.s("complete"),
        on_death=tasks.workflow_callback.s("death"),
    ).enqueue()
    run_jobs()
    callbacks = [line for line in lines(run_log) if line.startswith("callback")]
    assert sorted(callbacks) == [f"callback complete {run.id}", f"callback success {run.id}"]
    run.refresh()
    assert set(run.workflow.callback_jobs) == {"on_success", "on_complete"}
    assert run.workflow.on_death_fired_at is None


def test_a_death_fires_on_death_and_on_complete_but_never_on_success(run_log):
    run = workflow(
        tasks.fail_permanently.s(),
        tasks.step_log.s("ok"),
        on_success=tasks.workflow_callback.s("success"),
        on_complete=tasks.workflow_callback.s("complete"),
        on_death=tasks.workflow_callback.s("death"),
    ).enqueue()
    run_jobs()
    callbacks = sorted(line for line in lines(run_log) if line.startswith("callback"))
    assert callbacks == [f"callback complete {run.id}", f"callback death {run.id}"]


def test_replaying_a_dead_step_makes_its_cancelled_dependents_runnable_again(run_log, tmp_path):
    fixed = tmp_path / "fixed"
    run = workflow(
        chain(tasks.fail_until_file_exists.s(str(fixed)), tasks.step_log.s("b"), tasks.step_log.s("c")),
        on_success=tasks.workflow_callback.s("success"),
        on_complete=tasks.workflow_callback.s("complete"),
    ).enqueue()
    run_jobs()
    assert run.refresh().status == WorkflowStatus.FAILED
    fixed.touch()
    lifecycle.replay(run.job_ids["fail_until_file_exists"], by="ops")
    assert statuses(run) == {
        "fail_until_file_exists": "queued",
        "step_log": "blocked",
        "step_log-2": "blocked",
    }
    assert run.refresh().status == WorkflowStatus.RUNNING and run.progress == (0, 0, 3)
    run_jobs()
    assert run.refresh().status == WorkflowStatus.SUCCEEDED
    callbacks = sorted(line for line in lines(run_log) if line.startswith("callback"))
    assert callbacks == [f"callback complete {run.id}", f"callback success {run.id}"], "each once"


def test_retrying_a_step_cancelled_for_a_dead_dependency_cancels_it_again(run_log):
    run = workflow(chain(tasks.fail_permanently.s(), tasks.step_log.s("b"))).enqueue()
    run_jobs()
    lifecycle.retry(run.job_ids["step_log"])
    assert statuses(run)["step_log"] == "cancelled"
    assert run.refresh().progress == (2, 2, 2)
    assert lines(run_log) == []


def test_cancelling_a_step_cancels_its_dependents():
    run = workflow(chain(tasks.step_log.s("a"), tasks.step_log.s("b"), tasks.step_log.s("c"))).enqueue()
    lifecycle.cancel(run.job_ids["step_log"])
    assert set(statuses(run).values()) == {"cancelled"}
    assert run.refresh().status == WorkflowStatus.FAILED


def test_deleting_an_unfinished_step_cancels_its_dependents():
    run = workflow(chain(tasks.step_log.s("a"), tasks.step_log.s("b"), tasks.step_log.s("c"))).enqueue()
    first = run.job_ids["step_log"]
    lifecycle.delete_jobs([first])
    dependents = Job.objects.filter(id__in=[run.job_ids["step_log-2"], run.job_ids["step_log-3"]])
    assert set(dependents.values_list("status", flat=True)) == {"cancelled"}
    assert dependents.get(id=run.job_ids["step_log-2"]).last_error == f"dependency {first} was cancelled"


def test_purging_the_queue_of_a_step_cancels_its_dependents_in_other_queues():
    make_queue("imports")
    first = tasks.step_log.using(queue_name="imports").s("a")
    run = workflow(chain(first, tasks.step_log.s("b"))).enqueue()
    assert lifecycle.purge_queue("imports") == 1
    assert Job.objects.get(id=run.job_ids["step_log-2"]).status == "cancelled"


def test_cancelling_a_workflow_cancels_every_unfinished_step_and_completes_it(run_log):
    run = workflow(
        chain(tasks.step_log.s("a"), tasks.step_log.s("b")),
        tasks.step_log.s("c"),
        on_complete=tasks.workflow_callback.s("complete"),
        on_success=tasks.workflow_callback.s("success"),
    ).enqueue()
    run.cancel()
    assert set(statuses(run).values()) == {"cancelled"}
    assert run.status == WorkflowStatus.CANCELLED
    run_jobs()
    assert lines(run_log) == [f"callback complete {run.id}"]


def test_the_handle_reads_a_workflow_back_by_id():
    run = workflow(tasks.add.s(1, 2), name="sums").enqueue()
    run_jobs()
    again = get_workflow(run.id)
    assert again.status == WorkflowStatus.SUCCEEDED
    assert again.workflow.name == "sums"
    assert again.result("add").return_value == 3


def test_a_workflow_of_10000_jobs_is_written_with_bulk_statements():
    with CaptureQueriesContext(connection) as queries:
        run = workflow(
            group(tasks.noop.s() for _ in range(9999)), then=tasks.noop.s().set(name="report")
        ).enqueue()
    assert len(queries) < 20, f"{len(queries)} statements"
    assert Job.objects.filter(status=Status.QUEUED).count() == 9999
    assert Job.objects.filter(status=Status.BLOCKED).count() == 1
    assert JobDependency.objects.filter(job_id=run.job_ids["report"]).count() == 9999


# Bad input: a clear error, and nothing written.


def steps_of(*specs: tuple[str, tuple[str, ...]]) -> list[StepSpec]:
    return [StepSpec(name, JobSpec("tests.tasks.noop"), deps) for name, deps in specs]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (steps_of(("a", ("b",)), ("b", ("a",))), "cycle"),
        (steps_of(("a", ("zzz",))), "depends on 'zzz', which is no step"),
        (steps_of(("a", ()), ("a", ())), "Two steps are named 'a'"),
        (steps_of(("a", ("a",))), "depends on itself"),
        ([], "at least one step"),
    ],
)
def test_a_malformed_graph_is_refused_and_nothing_is_written(steps, message):
    with pytest.raises(InvalidJob, match=message):
        lifecycle.create_workflow(steps)
    assert not Job.objects.exists() and not Workflow.objects.exists()


def test_a_bad_step_among_good_ones_writes_nothing():
    steps = [*steps_of(("a", ()), ("b", ("a",))), StepSpec("c", JobSpec("tests.tasks.noop", queue="nope"))]
    with pytest.raises(UnknownQueue):
        lifecycle.create_workflow(steps)
    with pytest.raises(UnknownTask):
        lifecycle.create_workflow([StepSpec("x", JobSpec("tests.tasks.nothing_here"))])
    assert not Job.objects.exists() and not WorkflowStep.objects.exists()


def test_an_unknown_callback_is_refused():
    with pytest.raises(InvalidJob, match="'on_finish' is no callback"):
        lifecycle.create_workflow(steps_of(("a", ())), {"on_finish": JobSpec("tests.tasks.noop")})


def test_a_finished_workflow_cannot_be_cancelled_step_by_step():
    run = workflow(tasks.noop.s()).enqueue()
    run_jobs()
    with pytest.raises(JobStateError):
        lifecycle.cancel(run.job_ids["noop"])


def test_a_callback_that_can_no_longer_be_enqueued_is_logged_and_the_steps_still_finish(caplog):
    make_queue("reports")
    run = workflow(
        tasks.noop.s(), on_complete=tasks.workflow_callback.using(queue_name="reports").s("c")
    ).enqueue()
    lifecycle.delete_queue("reports")
    run_jobs()
    assert run.refresh().status == WorkflowStatus.SUCCEEDED
    assert "its on_complete callback could not be enqueued: Queue 'reports' does not exist" in caplog.text


def test_a_finished_workflow_is_pruned_with_its_last_step():
    make_queue("default", retention=timedelta(days=1))
    make_queue("kept", retention=timedelta(days=30))
    workflow(chain(tasks.noop.s(), tasks.noop.s())).enqueue()  # pruned whole
    partly_kept = workflow(chain(tasks.noop.s(), tasks.noop.using(queue_name="kept").s())).enqueue()
    run_jobs()
    unfinished = workflow(chain(tasks.noop.s(), tasks.noop.s())).enqueue()
    Job.objects.update(finished_at=timezone.now() - timedelta(days=2))
    assert lifecycle.prune_finished() == 3
    assert list(Workflow.objects.order_by("pk").values_list("pk", flat=True)) == [
        partly_kept.workflow.pk,
        unfinished.workflow.pk,
    ]
