"""Pickup latency measured the same way for every system, and the bodies shared by all.

The latency task of every system calls ``record`` as the first thing its body does,
with the wall-clock time at which the producer called enqueue. One line per run is
appended to a file (small appends are atomic), so no system's own bookkeeping of
"started" is needed and all are timed at the same point: the task body starting.

W6's long task does the same and then waits, holding its slot without using the CPU:
with ``hold`` in the systems that run a job per process or thread, with ``asyncio.sleep``
in those whose jobs are coroutines (PgQueuer, procrastinate's async tasks). A blocking
sleep there would stop every job of the process, and a thread would meet the event
loop's default executor (min(32, CPUs + 4) threads), which is not one of their slots.
"""

from __future__ import annotations

import math
import time
from pathlib import Path


def record(path: str, enqueued: float) -> None:
    started = time.time()
    with open(path, "a") as out:
        out.write(f"{enqueued!r} {started!r}\n")


def hold(seconds: float) -> None:
    """The long job's work: keep the slot busy without using the CPU the others need."""
    time.sleep(seconds)


def pairs(path: Path) -> list[tuple[float, float]]:
    """(enqueued, started) wall-clock times of every run recorded in ``path``."""
    return parse(path.read_text()) if path.exists() else []


def parse(text: str) -> list[tuple[float, float]]:
    rows = (line.split() for line in text.splitlines() if line.strip())
    return [(float(enqueued), float(started)) for enqueued, started in rows]


def latencies_ms(path: Path) -> list[float]:
    return sorted((started - enqueued) * 1000 for enqueued, started in pairs(path))


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``values`` (no interpolation: a real sample)."""
    rank = max(1, math.ceil(q / 100 * len(values)))
    return values[rank - 1]


def summary(values: list[float]) -> dict[str, float]:
    """p50, p99 and max of sorted ``values`` in ms, as the drivers report them."""
    return {"p50_ms": percentile(values, 50), "p99_ms": percentile(values, 99), "max_ms": values[-1]}
