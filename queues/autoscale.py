"""``runworker --autoscale MIN,MAX``: how many child processes a worker should run.

The transition this module decides is *children + 1* when every child is busy and
more work is already claimed or waiting, and *children - 1* when some child has
had nothing to do for ``QUEUES_AUTOSCALE_IDLE`` seconds; never below MIN or above
MAX. It only decides (pure, no database); the worker spawns and stops children.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .conf import conf


def parse_bounds(text: str) -> tuple[int, int]:
    """``"MIN,MAX"`` as two whole numbers with 1 <= MIN <= MAX, or a ValueError saying why."""
    parts = [part.strip() for part in text.split(",")]
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        raise ValueError(f"--autoscale takes MIN,MAX as two whole numbers, e.g. 2,8; not {text!r}.")
    low, high = int(parts[0]), int(parts[1])
    if not 1 <= low <= high:
        raise ValueError(f"--autoscale needs 1 <= MIN <= MAX; {low},{high} is not.")
    return low, high


@dataclass
class Autoscaler:
    minimum: int
    maximum: int
    idle_after: float = field(default_factory=lambda: float(conf.QUEUES_AUTOSCALE_IDLE))
    full_at: float = 0.0  # the last moment every child was busy
    shrunk_at: float = 0.0

    def decide(self, now: float, children: int, busy: int, more_work: bool) -> int:
        """+1 to add a child, -1 to stop an idle one, 0 to stay."""
        if busy >= children:
            self.full_at = now
            return 1 if more_work and children < self.maximum else 0
        quiet_since = max(self.full_at, self.shrunk_at)
        if children > self.minimum and now - quiet_since >= self.idle_after:
            self.shrunk_at = now  # one child per idle period, so load that comes back finds the rest
            return -1
        return 0
