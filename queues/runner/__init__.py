"""The runworker process, in parts that can each be tested alone.

``loop`` (claim, dispatch to idle children, shutdown), ``pool`` (the children: forked
processes, or in-process for tests), ``child`` (what a child runs for one job),
``outbox`` (outcomes written by a thread, in batches), ``pacing`` (how many jobs to
claim ahead) and ``duties`` (cluster duties shared with runbroker).
"""

from .loop import Worker, attempt_outcome

__all__ = ["Worker", "attempt_outcome"]
