"""How many jobs a worker claims ahead of its idle children: adaptive prefetch.

A claim costs a round trip, so a worker running quick jobs wants a few claimed
ahead, or its children idle while it claims. A worker running long jobs wants none:
a job reserved here waits for one of its children while another worker's free
child could start it at once. The pacer keeps a backlog worth a few claims' time of
work (``CLAIMS_AHEAD`` times what a claim has been taking here, at least ``HORIZON``
seconds) at the rate jobs have been finishing here: hundreds of no-op jobs, none of
a minute-long report. On a slow or busy database, claims take longer, so more is held.
``runworker --prefetch N`` fixes it at N instead.
Pure: no database, no processes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HORIZON = 0.05  # seconds of work to hold ahead, at least
CLAIMS_AHEAD = 4  # ... or this many claims' time, if more
MAX_AHEAD = 256  # never more than this many jobs reserved and waiting here
WEIGHT = 0.2  # of the newest duration in the moving average


@dataclass
class Pacer:
    concurrency: int
    fixed: int | None = None  # ``--prefetch``: a fixed backlog instead of an adaptive one
    mean_duration: float | None = None  # seconds per job, a moving average of those finished
    mean_claim: float = 0.0  # seconds per claim statement, a moving average

    def finished(self, seconds: float) -> None:
        """Learn from one job that ran ``seconds`` in a child."""
        seconds = max(seconds, 1e-4)
        self.mean_duration = (
            seconds if self.mean_duration is None else (1 - WEIGHT) * self.mean_duration + WEIGHT * seconds
        )

    def claimed(self, seconds: float) -> None:
        """Learn from one claim that took ``seconds``."""
        self.mean_claim = (1 - WEIGHT) * self.mean_claim + WEIGHT * seconds if self.mean_claim else seconds

    def ahead(self) -> int:
        """How many claimed jobs may wait here for a child, beyond those that start now."""
        if self.fixed is not None:
            return self.fixed
        if self.mean_duration is None:
            return self.concurrency  # nothing known yet: one round's worth
        horizon = max(HORIZON, CLAIMS_AHEAD * self.mean_claim)
        return min(MAX_AHEAD, math.floor(self.concurrency * horizon / self.mean_duration))

    def room(self, idle: int, backlog: int) -> int:
        """How many jobs to claim now: enough for the idle children and the backlog's target.

        Nothing while the backlog still covers every idle child and half its target, so
        claims come in batches rather than one job at a time.
        """
        target = idle + self.ahead()
        if backlog >= idle and backlog * 2 > self.ahead():
            return 0
        return max(0, target - backlog)
