"""runworker --autoscale MIN,MAX: more children while work waits, fewer once they idle."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from queues.autoscale import Autoscaler, parse_bounds
from queues.models import Job, Worker
from queues.states import Status

from .factories import make_job
from .processes import WorkerProcess, task_log, wait_until
from .test_flow import intervals, most_at_once


def test_all_busy_with_more_work_adds_a_child_up_to_the_maximum():
    scaler = Autoscaler(1, 3, idle_after=10)
    assert scaler.decide(0.0, children=1, busy=1, more_work=True) == 1
    assert scaler.decide(0.1, children=3, busy=3, more_work=True) == 0
    assert scaler.decide(0.2, children=2, busy=2, more_work=False) == 0


def test_an_idle_child_is_stopped_one_per_idle_period_down_to_the_minimum():
    scaler = Autoscaler(1, 3, idle_after=10)
    scaler.decide(0.0, children=3, busy=3, more_work=False)
    assert scaler.decide(5.0, children=3, busy=1, more_work=False) == 0
    assert scaler.decide(10.0, children=3, busy=1, more_work=False) == -1
    assert scaler.decide(15.0, children=2, busy=0, more_work=False) == 0
    assert scaler.decide(20.0, children=2, busy=0, more_work=False) == -1
    assert scaler.decide(99.0, children=1, busy=0, more_work=False) == 0


@pytest.mark.parametrize(
    ("text", "reason"),
    [("3", "two whole numbers"), ("a,b", "two whole numbers"), ("4,2", "MIN <= MAX"), ("0,2", "MIN <= MAX")],
)
def test_bad_bounds_are_refused_with_the_reason(text, reason):
    with pytest.raises(ValueError, match=reason):
        parse_bounds(text)


@pytest.mark.django_db
def test_runworker_refuses_bad_autoscale_bounds_before_starting():
    with pytest.raises(CommandError, match="MIN <= MAX"):
        call_command("runworker", "--autoscale", "5,1")
    assert not Worker.objects.exists()


@pytest.mark.process
@pytest.mark.django_db(transaction=True)
def test_a_worker_grows_to_its_maximum_under_load_and_shrinks_when_idle(tmp_path):
    log = task_log(tmp_path, "spans.log")
    for _ in range(9):
        make_job("tests.tasks.timed", kwargs={"seconds": 1.0})
    worker = WorkerProcess("--autoscale", "1,3", log_dir=tmp_path, task_log=log, QUEUES_AUTOSCALE_IDLE="0.5")
    try:
        wait_until(lambda: Job.objects.filter(status=Status.SUCCEEDED).count() == 9, timeout=60)
        wait_until(lambda: Worker.objects.filter(concurrency=1).exists())
    finally:
        worker.stop()
    assert most_at_once(intervals(log)) == 3
