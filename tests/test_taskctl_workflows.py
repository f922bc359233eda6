"""``manage.py taskctl workflows``: list, show, cancel, retry a step."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from queues.testing import run_jobs
from queues.workflows import chain, workflow

from . import tasks

pytestmark = pytest.mark.django_db


def taskctl(*args: str) -> str:
    out = StringIO()
    call_command("taskctl", *args, stdout=out)
    return out.getvalue()


def pipeline():
    return workflow(
        chain(tasks.step_log.s("a").set(name="fetch"), tasks.step_log.s("b").set(name="store")),
        name="nightly",
        on_complete=tasks.workflow_callback.s("complete"),
    ).enqueue()


def test_list_shows_each_workflow_with_its_progress():
    run = pipeline()
    out = taskctl("workflows", "list")
    assert out.splitlines()[0].split() == [
        "ID",
        "NAME",
        "STATUS",
        "DONE",
        "FAILED",
        "TOTAL",
        "CREATED_AT",
        "FINISHED_AT",
    ]
    assert out.splitlines()[1].split()[:6] == [str(run.id), "nightly", "running", "0", "0", "2"]
    assert json.loads(taskctl("workflows", "list", "--status", "finished", "--json")) == []


def test_show_lists_the_steps_in_order_with_their_states_and_callbacks():
    run = pipeline()
    out = taskctl("workflows", "show", str(run.id))
    lines = out.splitlines()
    assert lines[1].split()[:4] == ["fetch", str(run.job_ids["fetch"]), "tests.tasks.step_log", "queued"]
    assert lines[2].split()[:4] == ["store", str(run.job_ids["store"]), "tests.tasks.step_log", "blocked"]
    assert f"workflow {run.id} nightly: running: 0/2 done, 0 failed" in out
    assert "on_complete: tests.tasks.workflow_callback not fired" in out


def test_cancel_cancels_every_unfinished_step():
    run = pipeline()
    data = json.loads(taskctl("workflows", "cancel", str(run.id), "--json"))
    assert data["status"] == "cancelled"
    assert {step["status"] for step in data["steps"]} == {"cancelled"}


def test_retry_runs_a_finished_step_again_and_its_dependents_wait_for_it():
    run = pipeline()
    run_jobs()
    out = taskctl("workflows", "retry", str(run.id), "store")
    assert f"Step store (job {run.job_ids['store']}) is queued again." in out


def test_an_unknown_workflow_or_step_is_a_clear_error():
    run = pipeline()
    with pytest.raises(CommandError, match="Workflow 999 does not exist"):
        taskctl("workflows", "show", "999")
    with pytest.raises(CommandError, match="'nope' of workflow"):
        taskctl("workflows", "retry", str(run.id), "nope")
