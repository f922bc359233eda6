"""Cluster duties, each on its own clock: recover lost workers, promote due jobs, cron, prune.

Every ``runworker`` and ``runbroker`` runs them (any number may at once: each duty is
guarded in ``queues.lifecycle.maintenance`` so a row changes once). Promotion runs
often and cheaply, because claims read queued jobs only: a job whose delay ran out
waits at most ``PROMOTE_EVERY`` for it. The process calls ``run_due`` from its loop and
sleeps no longer than ``next_due`` says.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from .. import lifecycle, scheduler
from ..conf import conf
from ..lifecycle.maintenance import PROMOTE_BATCH, PROMOTE_EVERY

logger = logging.getLogger("queues.worker")


@dataclass
class ClusterDuties:
    holder: str  # who acts: the cron leader lease is held under this name
    cron_and_prune: bool = True  # runbroker recovers and promotes only
    recover_every: float = field(default_factory=lambda: float(conf.QUEUES_HEARTBEAT_INTERVAL))
    next_recover: float = 0.0
    next_promote: float = 0.0
    next_prune: float = field(default_factory=lambda: time.monotonic() + conf.QUEUES_PRUNE_INTERVAL * 0.1)

    def run_due(self, now: float) -> None:
        """Do every duty whose time has come (database errors propagate to the caller)."""
        if now >= self.next_recover:
            lifecycle.recover_lost()
            if self.cron_and_prune:
                scheduler.tick(self.holder, lifecycle.lease_duration())
            self.next_recover = now + self.recover_every
        if now >= self.next_promote:
            full = lifecycle.promote_due() >= PROMOTE_BATCH
            self.next_promote = now if full else now + PROMOTE_EVERY
        if self.cron_and_prune and now >= self.next_prune:
            lifecycle.sweep_unreadable(live_only=True)
            pruned = lifecycle.prune_finished()
            full = pruned >= conf.QUEUES_PRUNE_BATCH
            self.next_prune = now + (1.0 if full else conf.QUEUES_PRUNE_INTERVAL)
            if pruned:
                logger.info("pruned %d finished jobs past their retention", pruned)

    def next_due(self) -> float:
        """The monotonic time of the next duty."""
        moments = [self.next_recover, self.next_promote]
        if self.cron_and_prune:
            moments.append(self.next_prune)
        return min(moments)
