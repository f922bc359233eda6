"""Pickup latency measured the same way for every system.

The latency task of every system calls ``record`` as the first thing its body does,
with the wall-clock time at which the producer called enqueue. One line per run is
appended to a file (small appends are atomic), so no system's own bookkeeping of
"started" is needed and all are timed at the same point: the task body starting.
"""

from __future__ import annotations

import math
import time
from pathlib import Path


def record(path: str, enqueued: float) -> None:
    started = time.time()
    with open(path, "a") as out:
        out.write(f"{enqueued!r} {started!r}\n")


def latencies_ms(path: Path) -> list[float]:
    if not path.exists():
        return []
    pairs = (line.split() for line in path.read_text().splitlines() if line.strip())
    return sorted((float(started) - float(enqueued)) * 1000 for enqueued, started in pairs)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``values`` (no interpolation: a real sample)."""
    rank = max(1, math.ceil(q / 100 * len(values)))
    return values[rank - 1]
