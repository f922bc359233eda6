"""Job statuses, the transitions between them, and which ones are final.

Only ``queues.lifecycle`` moves a job from one status to another; this module is the
map it follows, kept pure so that tests and the console can read it too.
"""

from __future__ import annotations

from django.db import models


class Status(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"  # run_after in the future (delay or retry back-off)
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    DEAD = "dead", "Dead"  # attempts exhausted or not retryable; a DeadLetter exists
    CANCELLED = "cancelled", "Cancelled"
    # A workflow step waiting for the steps it depends on; claims never see it.
    BLOCKED = "blocked", "Blocked"


WAITING = frozenset({Status.SCHEDULED, Status.QUEUED})
"""Jobs a worker may claim once their run_after has passed."""

TERMINAL = frozenset({Status.SUCCEEDED, Status.DEAD, Status.CANCELLED})
"""Jobs that will not run again unless an operator retries or replays them."""

TRANSITIONS: dict[str, frozenset[str]] = {
    "claim": WAITING,  # -> running
    "renew": frozenset({Status.RUNNING}),  # running -> running (lease extended)
    "succeed": frozenset({Status.RUNNING}),  # -> succeeded
    "fail": frozenset({Status.RUNNING}),  # -> scheduled (retry) or dead
    "release": frozenset({Status.RUNNING}),  # -> queued, attempt not counted (shutdown)
    "recover": frozenset({Status.RUNNING}),  # lease expired -> failed with WorkerLost
    # -> cancelled (a running attempt is stopped); a blocked step also when a dependency fails.
    "cancel": WAITING | {Status.RUNNING, Status.BLOCKED},
    "unblock": frozenset({Status.BLOCKED}),  # -> queued once every dependency is satisfied
    # -> blocked again: a dependency it was cancelled for is retried or replayed.
    "reblock": frozenset({Status.CANCELLED}),
    # -> queued now, with a fresh attempt budget; a dead job is replayed instead.
    "retry": frozenset({Status.SCHEDULED, Status.SUCCEEDED, Status.CANCELLED, Status.DEAD}),
    "replay": frozenset({Status.DEAD}),  # -> queued, fresh attempt budget
    "promote": frozenset({Status.SCHEDULED}),  # -> queued once run_after has passed
    "purge": WAITING,  # deleted by an operator emptying a queue
    "delete": frozenset({Status.SCHEDULED, Status.QUEUED}) | TERMINAL,  # never a running job
    # -> dead, with the unreadable values replaced (queues.quarantine); from any status,
    # and from a status column holding no status at all.
    "quarantine": frozenset(Status),
}
"""For each lifecycle transition, the statuses a job may be in for it to apply."""


class Outcome(models.TextChoices):
    """How one attempt ended, as recorded in the job's attempt history."""

    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    TIMEOUT = "timeout", "Timed out"
    LOST = "lost", "Worker lost"
