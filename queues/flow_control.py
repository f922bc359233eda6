"""Flow control: queue concurrency, queue rate limits and per-task circuit breakers.

The limits hold across every worker because they are worked out inside the claim's
own transaction, from the database:

- ``Queue.concurrency``: held jobs of the queue (reserved or running) are counted while the queue row
  is locked (``FOR UPDATE`` on PostgreSQL; SQLite's IMMEDIATE transactions lock the
  whole database), so two claims can never both fill the last free place.
- ``Queue.rate_limit``: a token bucket kept on the queue row (``rate_tokens``,
  ``rate_refilled_at``), refilled at ``rate_limit`` per second up to one second's
  worth (at least one), and spent by each job the claim starts.
- Circuit breakers: the transition this module makes is *closed -> open* when a
  task's failure ratio over the recent window passes ``QUEUES_CIRCUIT_FAILURE_RATIO``
  (``record_outcomes``, called by ``lifecycle.outcomes.finish``), *open -> half-open* when the
  cool-down has passed and one claim takes a single probe job (``ClaimLimits``), and
  *half-open -> closed or open* on the probe's outcome.

Claims from queues with no limits and no open circuits skip all of this: the
plain claim statement runs, with no lock and no extra write.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.utils import timezone

from .conf import conf
from .models import Circuit, CircuitState, Job, Queue
from .states import HELD, Outcome
from .values import Finished


@dataclass(frozen=True)
class QueueRow:
    id: int
    name: str
    concurrency: int | None
    rate_limit: float | None

    @property
    def limited(self) -> bool:
        return self.concurrency is not None or self.rate_limit is not None


@dataclass
class ClaimLimits:
    """What one claim may take: per-queue budgets, skipped queues and tasks, probes.

    ``load`` reads without locking; ``plan`` (inside the claim's transaction) locks
    the limited queues and works out the budgets; ``spend`` records what was taken.
    """

    queues: dict[int, QueueRow]
    in_scope: list[int]
    open_circuits: list[Circuit]
    queue_budgets: dict[int, int] = field(default_factory=dict)
    task_budgets: dict[str, int] = field(default_factory=dict)
    skip_queues: list[int] = field(default_factory=list)
    skip_tasks: list[str] = field(default_factory=list)
    tokens: dict[int, float] = field(default_factory=dict)
    refilled: dict[int, datetime] = field(default_factory=dict)

    @classmethod
    def load(cls, queue_names: Sequence[str] | None) -> ClaimLimits:
        rows = [
            QueueRow(*values)
            for values in Queue.objects.values_list("id", "name", "concurrency", "rate_limit")
        ]
        wanted = set(queue_names) if queue_names else None
        in_scope = [row.id for row in rows if row.limited and (wanted is None or row.name in wanted)]
        circuits = list(Circuit.objects.exclude(state=CircuitState.CLOSED)) if breaker_on() else []
        return cls(queues={row.id: row for row in rows}, in_scope=in_scope, open_circuits=circuits)

    @property
    def active(self) -> bool:
        return bool(self.in_scope or self.open_circuits)

    @property
    def names(self) -> dict[int, str]:
        return {row.id: row.name for row in self.queues.values()}

    def plan(self) -> datetime:
        """Lock the limited queues and work out what this claim may start; returns its time.

        The time is read once the locks are held, so that claims of one queue start
        jobs and refill its bucket in the order they commit.
        """
        locked = (
            Queue.objects.select_for_update()
            .filter(id__in=self.in_scope)
            .order_by("id")
            .values_list("id", "concurrency", "rate_limit", "rate_tokens", "rate_refilled_at")
        )
        rows = list(locked)
        now = timezone.now()
        running = dict(
            Job.objects.filter(queue_id__in=[row[0] for row in rows if row[1] is not None], status__in=HELD)
            .values_list("queue_id")
            .annotate(n=Count("id"))
            .order_by()
        )
        for queue_id, concurrency, rate_limit, tokens, refilled_at in rows:
            budget = math.inf
            if concurrency is not None:
                budget = max(concurrency - running.get(queue_id, 0), 0)
            if rate_limit is not None:
                self.tokens[queue_id] = refill(rate_limit, tokens, refilled_at, now)
                # Never back in time (hosts' clocks differ a little): a bucket refilled
                # "earlier" would be refilled twice for the same moments.
                self.refilled[queue_id] = max(now, refilled_at or now)
                budget = min(budget, math.floor(self.tokens[queue_id]))
            if budget == 0:
                self.skip_queues.append(queue_id)
            elif budget != math.inf:
                self.queue_budgets[queue_id] = int(budget)
        for circuit in self.open_circuits:
            if _start_probe(circuit, now):
                self.task_budgets[circuit.task_path] = 1
            else:
                self.skip_tasks.append(circuit.task_path)
        return now

    def spend(self, claimed: Sequence[tuple[int, str]], now: datetime) -> None:
        """Take the claimed jobs ((queue id, task path) each) off the token buckets; give
        unused probes back."""
        started = Counter(queue_id for queue_id, _ in claimed)
        for queue_id, tokens in self.tokens.items():
            Queue.objects.filter(id=queue_id).update(
                rate_tokens=tokens - started.get(queue_id, 0), rate_refilled_at=self.refilled[queue_id]
            )
        probed = {task_path for _, task_path in claimed}
        unused = [task for task in self.task_budgets if task not in probed]
        if unused:
            # Nothing of that task was waiting: the next claim may probe at once.
            Circuit.objects.filter(task_path__in=unused, state=CircuitState.HALF_OPEN).update(
                state=CircuitState.OPEN, retry_at=now
            )


def refill(rate_limit: float, tokens: float | None, refilled_at: datetime | None, now: datetime) -> float:
    """The starts a rate-limited queue may make now (pure): a bucket of one second's worth."""
    capacity = max(1.0, rate_limit)
    if tokens is None or refilled_at is None:
        return capacity
    elapsed = max((now - refilled_at).total_seconds(), 0.0)
    return min(capacity, tokens + elapsed * rate_limit)


# --- circuit breakers --------------------------------------------------------------


def breaker_on() -> bool:
    return conf.QUEUES_CIRCUIT_FAILURE_RATIO is not None


def _start_probe(circuit: Circuit, now: datetime) -> bool:
    """Open (or half-open with a lost probe) and past retry_at: this claim takes the probe."""
    if circuit.retry_at is None or circuit.retry_at > now:
        return False
    cooldown = timedelta(seconds=conf.QUEUES_CIRCUIT_COOLDOWN)
    # Guarded, so that of many claims at once exactly one flips it and probes.
    return bool(
        Circuit.objects.filter(
            task_path=circuit.task_path, state=circuit.state, retry_at=circuit.retry_at
        ).update(state=CircuitState.HALF_OPEN, retry_at=now + cooldown)
    )


def record_outcomes(finished: Sequence[Finished], now: datetime) -> None:
    """Count finished attempts per task and move circuits (in the caller's transaction).

    Lost attempts (the worker died) say nothing about the task and are not counted.
    """
    if not breaker_on():
        return
    outcomes: dict[str, list[Finished]] = defaultdict(list)
    for item in finished:
        if item.outcome != Outcome.LOST:
            outcomes[item.job.task_path].append(item)
    for task_path in sorted(outcomes):  # one lock order, so finishing workers never deadlock
        circuit, _ = Circuit.objects.select_for_update().get_or_create(task_path=task_path)
        failed = [item for item in outcomes[task_path] if item.outcome != Outcome.SUCCEEDED]
        if _advance(circuit, len(outcomes[task_path]), len(failed), now) and failed:
            circuit.last_error = f"{failed[-1].error_type}: {failed[-1].error_message}"[:2000]
        circuit.save()


def _advance(circuit: Circuit, calls: int, failures: int, now: datetime) -> bool:
    """Apply a batch of outcomes to ``circuit``; True if it opened."""
    window = timedelta(seconds=conf.QUEUES_CIRCUIT_WINDOW)
    if circuit.state == CircuitState.OPEN:
        return False  # late outcomes of jobs that were already running
    if circuit.state == CircuitState.HALF_OPEN:
        if failures:
            return _open(circuit, now)
        circuit.state, circuit.opened_at, circuit.retry_at = CircuitState.CLOSED, None, None
        circuit.window_started_at, circuit.calls, circuit.failures = now, 0, 0
        return False
    if now - circuit.window_started_at > window:
        circuit.window_started_at, circuit.calls, circuit.failures = now, 0, 0
    circuit.calls += calls
    circuit.failures += failures
    ratio = circuit.failures / circuit.calls
    if circuit.calls >= conf.QUEUES_CIRCUIT_MIN_CALLS and ratio >= conf.QUEUES_CIRCUIT_FAILURE_RATIO:
        return _open(circuit, now)
    return False


def _open(circuit: Circuit, now: datetime) -> bool:
    circuit.state, circuit.opened_at = CircuitState.OPEN, now
    circuit.retry_at = now + timedelta(seconds=conf.QUEUES_CIRCUIT_COOLDOWN)
    circuit.window_started_at, circuit.calls, circuit.failures = now, 0, 0
    return True


def open_circuits() -> list[Circuit]:
    """Circuits that hold their task back now (open or probing), for the console and API."""
    return list(Circuit.objects.filter(~Q(state=CircuitState.CLOSED)).order_by("task_path"))


def reset_circuit(task_path: str) -> bool:
    """Close a task's circuit by hand (an operator fixed the cause); False if it was closed."""
    now = timezone.now()
    return bool(
        Circuit.objects.filter(task_path=task_path)
        .exclude(state=CircuitState.CLOSED)
        .update(
            state=CircuitState.CLOSED,
            opened_at=None,
            retry_at=None,
            window_started_at=now,
            calls=0,
            failures=0,
        )
    )
