"""Outcomes handed to the outbox are written in batches, by its thread or on close."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError
from django.utils import timezone

from queues import values
from queues.runner.outbox import Outbox
from queues.states import Outcome


def finished(job_id: int, outcome: Outcome = Outcome.SUCCEEDED) -> values.Finished:
    job = values.ClaimedJob(job_id, "tests.tasks.noop", [], {}, 1, 0, 3, 60, "default")
    now = timezone.now()
    return values.Finished(job, outcome, now, now)


class Recorder:
    """Stands in for ``lifecycle.finish``: records the batches, applies all but ``refused``."""

    def __init__(self, refused: frozenset[int] = frozenset(), fail_first: int = 0) -> None:
        self.batches: list[list[int]] = []
        self.refused = refused
        self.fail_first = fail_first
        self.written = threading.Event()

    def __call__(self, worker_id: str, batch: list[values.Finished]) -> set[int]:
        if self.fail_first:
            self.fail_first -= 1
            raise OperationalError("the database went away")
        self.batches.append([f.job.id for f in batch])
        self.written.set()
        return {f.job.id for f in batch} - self.refused


def test_close_writes_every_outcome_handed_in_once():
    recorder = Recorder()
    outbox = Outbox("w", write=recorder)
    for job_id in range(1, 51):
        outbox.put(finished(job_id))
    outbox.close()
    assert sorted(job_id for batch in recorder.batches for job_id in batch) == list(range(1, 51))
    assert outbox.pending == 0


def test_counts_are_of_the_applied_outcomes_only_and_taken_once():
    recorder = Recorder(refused=frozenset({3}))
    outbox = Outbox("w", write=recorder, threaded=False)
    for job_id, outcome in [(1, Outcome.SUCCEEDED), (2, Outcome.FAILED), (3, Outcome.SUCCEEDED)]:
        outbox.put(finished(job_id, outcome))
    outbox.flush()
    assert outbox.take_counts() == (1, 1)
    assert outbox.take_counts() == (0, 0)


def test_the_thread_writes_without_being_asked():
    recorder = Recorder()
    outbox = Outbox("w", write=recorder)
    outbox.put(finished(1))
    assert recorder.written.wait(10)
    outbox.close()
    assert recorder.batches == [[1]]


@pytest.mark.django_db
def test_a_database_error_keeps_the_batch_and_writes_it_later():
    recorder = Recorder(fail_first=1)
    outbox = Outbox("w", write=recorder)
    outbox.put(finished(1))
    assert recorder.written.wait(10)
    outbox.close()
    assert recorder.batches == [[1]]
