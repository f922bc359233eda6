"""Job actions over many rows, each row through the lifecycle's guarded transitions."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice

from .. import lifecycle
from ..exceptions import JobNotFound, JobStateError

MAX_ROWS = 10_000
"""One request acts on at most this many jobs, so that it answers in seconds; the
message says how many were left and the operator runs it again."""
CHUNK = 500


@dataclass
class Outcome:
    done: int = 0
    skipped: int = 0
    more: bool = False

    def message(self, verb: str) -> str:
        text = f"{verb} {self.done} job{'s' if self.done != 1 else ''}"
        if self.skipped:
            text += f"; {self.skipped} skipped (their status does not allow it)"
        if self.more:
            text += f"; stopped after {MAX_ROWS:,}: run it again for the rest"
        return text + "."


def run(action: str, ids: Iterable[int], by: str) -> Outcome:
    """Retry, cancel or delete each job; a job in the wrong status is skipped, not an error."""
    ids = iter(ids)
    batch = list(islice(ids, MAX_ROWS))
    outcome = Outcome(more=next(ids, None) is not None)
    if action == "delete":
        for start in range(0, len(batch), CHUNK):
            outcome.done += lifecycle.delete_jobs(batch[start : start + CHUNK])
        outcome.skipped = len(batch) - outcome.done
        return outcome
    for job_id in batch:
        try:
            if action == "retry":
                lifecycle.retry(job_id, by=by)
            else:
                lifecycle.cancel(job_id)
            outcome.done += 1
        except (JobNotFound, JobStateError):
            outcome.skipped += 1
    return outcome
