"""The runworker loop with an in-process pool: claim, start in idle slots, outbox, burst exit."""

from __future__ import annotations

import contextvars
from datetime import timedelta

import pytest
from django.utils import timezone

from queues import lifecycle
from queues.models import Attempt, Circuit, CircuitState, Job, Worker
from queues.runner import Worker as Runner
from queues.runner.child import Assignment
from queues.runner.pool import InProcessPool
from queues.states import Outcome, Status

from . import tasks

pytestmark = pytest.mark.django_db(transaction=True)


def runner(**options) -> Runner:
    return Runner(queues=None, concurrency=2, burst=True, listen=False, in_process=True, **options)


def run(loop: Runner) -> None:
    """Run the loop in a copy of this context: the worker's log context stays with it."""
    contextvars.copy_context().run(loop.run)


def test_a_burst_run_drains_every_due_job_and_records_its_outcome():
    results = [tasks.add.enqueue(i, i) for i in range(30)]
    failing = tasks.fail.enqueue()
    run(runner())
    assert [tasks.add.get_result(r.id).return_value for r in results] == [2 * i for i in range(30)]
    assert Job.objects.get(pk=failing.id).status == Status.SCHEDULED, "retried after its back-off"
    assert Attempt.objects.filter(outcome=Outcome.SUCCEEDED).count() == 30
    (worker,) = Worker.objects.all()
    assert (worker.status, worker.jobs_done, worker.jobs_failed) == ("stopped", 30, 1)


def test_every_attempt_started_in_an_idle_slot_and_was_marked_running_first():
    tasks.record.enqueue()
    loop = runner()
    sent: list[str] = []
    original = InProcessPool.send

    def watch(pool: InProcessPool, slot, assignment: Assignment) -> None:
        sent.append(Job.objects.get(pk=assignment.job.id).status)
        assert slot.job is not None and slot.job.id == assignment.job.id
        original(pool, slot, assignment)

    loop.pool.send = watch.__get__(loop.pool)
    run(loop)
    assert sent == [Status.RUNNING], "started (and its timeout clock running) when it reached its slot"


def test_a_job_cancelled_while_reserved_is_dropped_unstarted():
    job = tasks.record.enqueue()
    loop = runner()
    real_claim = loop._claim

    def claim_then_cancel(now: float) -> None:
        real_claim(now)
        for claimed in loop.backlog:
            lifecycle.cancel(claimed.id)

    loop._claim = claim_then_cancel
    run(loop)
    assert Job.objects.get(pk=job.id).status == Status.CANCELLED
    assert not Attempt.objects.exists()


def test_a_reserved_job_whose_circuit_opened_meanwhile_goes_back_to_its_queue_unstarted(settings):
    settings.QUEUES_CIRCUIT_FAILURE_RATIO = 0.5
    jobs = [tasks.record.enqueue() for _ in range(3)]
    loop = runner()
    real_claim = loop._claim

    def claim_then_open_the_circuit(now: float) -> None:
        real_claim(now)
        if loop.backlog:  # other workers' failures opened it while these waited here
            Circuit.objects.update_or_create(
                task_path="tests.tasks.record",
                defaults={"state": CircuitState.OPEN, "retry_at": timezone.now() + timedelta(minutes=5)},
            )

    loop._claim = claim_then_open_the_circuit
    run(loop)
    assert [Job.objects.get(pk=job.id).status for job in jobs] == [Status.QUEUED] * 3
    assert not Job.objects.filter(attempts__gt=0).exists(), "their claim is not counted"
    assert not Attempt.objects.exists()
