"""Run your jobs inside your own tests, as Oban.Testing and Sidekiq::Testing do.

    from queues.testing import run_jobs

    def test_signing_up_sends_the_welcome_mail(client, mailoutbox):
        client.post("/signup/", {"email": "a@example.com"})
        ran = run_jobs(queues=["default"])
        assert len(ran.succeeded) == 1 and mailoutbox[0].subject == "Welcome"

The jobs run in the test's own process, on its database connection and inside its
transaction, through the claim and finish path a worker uses: attempts, results,
retries and dead letters are recorded exactly as in production. There is no child
process, so a timeout is not enforced (a job that hangs hangs the test).
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from django.utils import timezone

from . import lifecycle, registry, values
from .compat import TaskResult
from .models import Job
from .models import Worker as WorkerRow
from .runner import attempt_outcome
from .runner.child import Assignment, run
from .states import Outcome, Status


@dataclass(frozen=True)
class Ran:
    """What ``run_jobs`` did, as Django Tasks results read after the run."""

    succeeded: list[TaskResult]
    """Jobs that succeeded (``return_value`` holds the result)."""
    failed: list[TaskResult]
    """Jobs whose attempt failed and that did not succeed after it: dead (FAILED), or
    READY with a retry scheduled after the back-off (so also in ``scheduled``)."""
    scheduled: list[TaskResult]
    """Jobs of these queues waiting for a later time: delayed ones and retries."""


def run_jobs(queues: Sequence[str] | None = None, *, limit: int = 1000) -> Ran:
    """Run every due job of ``queues`` (default: all) until none is due; say how each ended.

    Jobs enqueued by the jobs that run are run too. Jobs due later are left alone and
    reported in ``scheduled``; paused queues are skipped, as by a worker. More than
    ``limit`` attempts raise RuntimeError (a job that keeps enqueueing another would
    otherwise never let the test end).
    """
    names = list(queues) if queues is not None else None
    hostname, pid = socket.gethostname(), os.getpid()
    worker_id = f"testing-{hostname}-{pid}-{secrets.token_hex(3)}"
    lifecycle.register_worker(
        WorkerRow(id=worker_id, hostname=hostname, pid=pid, queues=names or [], concurrency=1)
    )
    succeeded: set[int] = set()
    failed: set[int] = set()
    attempts = 0
    try:
        while True:
            lifecycle.promote_due()  # a job whose delay ran out is due now, not at the next pacing
            if not (jobs := lifecycle.claim(worker_id, names, 1)):
                break
            attempts += 1
            if attempts > limit:
                lifecycle.release(worker_id, [job.id for job in jobs])
                raise RuntimeError(f"run_jobs ran {limit} attempts and jobs are still due; is one looping?")
            finished = _attempt(worker_id, jobs[0])
            if lifecycle.finish(worker_id, [finished]):
                (succeeded if finished.outcome == Outcome.SUCCEEDED else failed).add(finished.job.id)
    finally:
        lifecycle.count_work(worker_id, len(succeeded), len(failed))
        lifecycle.stop_worker(worker_id)
    return Ran(
        succeeded=[_result(job_id) for job_id in sorted(succeeded)],
        failed=[_result(job_id) for job_id in sorted(failed - succeeded)],
        scheduled=[_result(job_id) for job_id in _scheduled(names)],
    )


def _attempt(worker_id: str, job: values.ClaimedJob) -> values.Finished:
    """Start one reserved job and run it here, as a worker's child would; describe how it ended."""
    started_at = timezone.now()
    lifecycle.start(worker_id, [job.id], started_at)
    return attempt_outcome(job, run(Assignment(job, worker_id)), started_at, timezone.now())


def _scheduled(names: list[str] | None) -> list[int]:
    waiting = Job.objects.filter(status=Status.SCHEDULED, run_after__gt=timezone.now()).exclude(
        task_path=Job.RAW_TASK
    )
    if names is not None:
        waiting = waiting.filter(queue__name__in=names)
    return list(waiting.order_by("run_after", "id").values_list("id", flat=True))


def _result(job_id: int) -> TaskResult:
    task_path = Job.objects.values_list("task_path", flat=True).get(id=job_id)
    return registry.load(task_path).get_result(str(job_id))
