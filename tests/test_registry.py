"""Task paths from input are looked up among registered tasks; only stored paths are imported."""

from __future__ import annotations

import sys

import pytest

from queues import registry
from queues.exceptions import UnknownTask
from queues.models import Job
from queues.states import Status

from . import elsewhere, tasks
from .processes import WorkerProcess


def test_lookup_finds_a_registered_task():
    assert registry.lookup("tests.tasks.add") is tasks.add


def test_lookup_refuses_a_module_that_is_not_a_registered_task_without_importing_it():
    with pytest.raises(UnknownTask, match=r"'tests\.import_probe\.anything' is not a registered task"):
        registry.lookup("tests.import_probe.anything")
    assert "tests.import_probe" not in sys.modules


@pytest.mark.parametrize("path", [".tasks.add", "tests..add", "tests.tasks.", "add", "this is.not", ""])
def test_lookup_refuses_a_malformed_path_with_the_same_clear_error(path):
    with pytest.raises(UnknownTask, match="is not a task path"):
        registry.lookup(path)


def test_load_imports_the_task_a_stored_job_names():
    assert registry.load("tests.elsewhere.shout") is elsewhere.shout


def test_load_refuses_a_stored_path_that_is_not_a_task():
    with pytest.raises(UnknownTask, match="not decorated with @task"):
        registry.load("tests.processes.wait_until")


@pytest.mark.process
@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_a_task_enqueued_from_python_outside_any_apps_tasks_module(tmp_path):
    result = elsewhere.shout.enqueue("hi")
    worker = WorkerProcess("--burst", log_dir=tmp_path)
    assert worker.wait() == 0, worker.output()
    job = Job.objects.get(pk=result.id)
    assert (job.status, job.result) == (Status.SUCCEEDED, "HI")
