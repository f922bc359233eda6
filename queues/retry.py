"""Retry back-off: pure arithmetic, no database."""

from __future__ import annotations

import random

from .conf import conf


def backoff_seconds(attempt: int, rng: random.Random | None = None) -> float:
    """Delay before the attempt after ``attempt`` (1-based): min(base·2^(n-1), cap) ± jitter.

    Jitter spreads retries of jobs that failed together so they do not stampede back.
    """
    base, cap, jitter = conf.QUEUES_RETRY_BASE, conf.QUEUES_RETRY_CAP, conf.QUEUES_RETRY_JITTER
    delay = min(base * 2 ** max(attempt - 1, 0), cap)
    spread = delay * jitter
    return max(0.0, delay + (rng or random).uniform(-spread, spread))
