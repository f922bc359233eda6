"""Job statuses, the transitions between them, and which ones are final.

Only ``queues.lifecycle`` moves a job from one status to another; this module is the
map it follows, kept pure so that tests and the console can read it too.
"""

from __future__ import annotations

from django.db import models


class Status(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"  # run_after in the future (delay or retry back-off)
    QUEUED = "queued", "Queued"
    RESERVED = "reserved", "Reserved"  # claimed by a worker, its code not started yet
    RUNNING = "running", "Running"  # its code runs (started_at is when it began)
    SUCCEEDED = "succeeded", "Succeeded"
    DEAD = "dead", "Dead"  # attempts exhausted or not retryable; a DeadLetter exists
    CANCELLED = "cancelled", "Cancelled"
    # A workflow step waiting for the steps it depends on; claims never see it.
    BLOCKED = "blocked", "Blocked"


WAITING = frozenset({Status.SCHEDULED, Status.QUEUED})
"""Jobs no one holds yet: queued ones may be claimed, scheduled ones once promoted."""

HELD = frozenset({Status.RESERVED, Status.RUNNING})
"""Jobs a worker (or a TCP client) holds under a lease."""

LIVE = WAITING | HELD
"""Jobs that may still run."""

TERMINAL = frozenset({Status.SUCCEEDED, Status.DEAD, Status.CANCELLED})
"""Jobs that will not run again unless an operator retries or replays them."""

TRANSITIONS: dict[str, frozenset[str]] = {
    # -> reserved for a worker, or running at once for a TCP client (it starts on receipt).
    # Only queued jobs: a scheduled one is promoted first, so that the claim reads one
    # partial index whose order is the claim's, whatever the table's statistics say.
    "claim": frozenset({Status.QUEUED}),
    # -> running, written by the worker just before it hands the job to an idle child.
    "start": frozenset({Status.RESERVED}),
    "renew": HELD,  # lease extended
    "succeed": frozenset({Status.RUNNING}),  # -> succeeded
    "fail": frozenset({Status.RUNNING}),  # -> scheduled (retry) or dead
    "release": frozenset({Status.RESERVED}),  # -> queued: never started, attempt not counted
    # -> queued: its code ran and a shutdown stopped it; the attempt stays in the history,
    # not counted against max_attempts.
    "cut": frozenset({Status.RUNNING}),
    # lease expired: a running attempt fails with WorkerLost; a reserved one is released.
    "recover": HELD,
    # -> cancelled (a held job is dropped or stopped by its worker); a blocked step also
    # when a dependency fails.
    "cancel": LIVE | {Status.BLOCKED},
    "unblock": frozenset({Status.BLOCKED}),  # -> queued once every dependency is satisfied
    # -> blocked again: a dependency it was cancelled for is retried or replayed.
    "reblock": frozenset({Status.CANCELLED}),
    # -> queued now, with a fresh attempt budget; a dead job is replayed instead.
    "retry": frozenset({Status.SCHEDULED, Status.SUCCEEDED, Status.CANCELLED, Status.DEAD}),
    "replay": frozenset({Status.DEAD}),  # -> queued, fresh attempt budget
    "promote": frozenset({Status.SCHEDULED}),  # -> queued once run_after has passed
    "purge": WAITING,  # deleted by an operator emptying a queue
    "delete": WAITING | TERMINAL,  # never a held job
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
