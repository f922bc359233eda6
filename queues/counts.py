"""Job counts: per queue and status for every reader, and bounded ones for huge tables.

``status_counts`` is the one answer to "how many jobs of each status does each queue
hold". The API, taskctl and the stats ask for it exact (one grouped query). The
console asks for it bounded, so that it stays fast on tables of millions of rows: a
count is exact up to ``EXACT_UP_TO`` rows (a capped index scan that stops there);
above that, PostgreSQL's planner estimate is shown as "~1.2M" instead of scanning
every row, and a finished status (which only grows until pruned) that the column
statistics put far above the cap is read from them without touching the table at
all. SQLite, the single-machine engine, simply counts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection
from django.db.models import Count, QuerySet

from .models import Job, Queue
from .states import TERMINAL, Status

EXACT_UP_TO = 10_000


@dataclass(frozen=True)
class Tally:
    """How many rows, and whether that is exact or an estimate (shown with "~")."""

    value: int
    exact: bool

    def __str__(self) -> str:
        return humanize(self.value) if self.exact else f"~{humanize(self.value)}"

    def __bool__(self) -> bool:
        return self.value > 0


def humanize(value: int) -> str:
    if value < EXACT_UP_TO:
        return f"{value:,}"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.1f}".rstrip("0").rstrip(".") + unit
    return str(value)


def count(queryset: QuerySet) -> Tally:
    """How many rows ``queryset`` matches, exact when small, estimated when huge."""
    capped = queryset.order_by()[: EXACT_UP_TO + 1].count()
    if capped <= EXACT_UP_TO:
        return Tally(capped, True)
    return estimate(queryset, floor=capped)


def estimate(queryset: QuerySet, floor: int = 0) -> Tally:
    if connection.vendor != "postgresql":
        return Tally(queryset.order_by().count(), True)
    plan = json.loads(queryset.order_by().explain(format="json"))
    return Tally(max(int(plan[0]["Plan"]["Plan Rows"]), floor), False)


def capped_counts(pairs: list[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Rows per (queue id, status), each capped at EXACT_UP_TO + 1, in one round trip.

    Each branch reads the (queue, status) index and stops at its LIMIT, so a queue
    with a million finished jobs costs no more than one with ten thousand.
    """
    if not pairs:
        return {}
    branch = (
        "SELECT %s, %s, COUNT(*) FROM (SELECT 1 FROM queues_job "
        "WHERE queue_id = %s AND status = %s LIMIT %s) AS capped"
    )
    sql = " UNION ALL ".join([branch] * len(pairs))
    params: list[object] = []
    for queue_id, status in pairs:
        params += [queue_id, status, queue_id, status, EXACT_UP_TO + 1]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {(int(queue_id), status): n for queue_id, status, n in cursor.fetchall()}


def table_estimates(pairs: list[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Rows per (queue id, status) as the planner would guess them, from one catalog read.

    The planner multiplies the two columns' most-common-value frequencies by the
    table's row count; pairs whose values are not among the most common get no guess
    (they are rare, so the caller counts them exactly).
    """
    if connection.vendor != "postgresql" or not pairs:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.reltuples, s.attname, s.most_common_vals::text::text[], s.most_common_freqs "
            "FROM pg_class c JOIN pg_stats s ON s.tablename = c.relname "
            "AND s.schemaname = ANY (current_schemas(false)) "
            "WHERE c.relname = 'queues_job' AND s.attname IN ('queue_id', 'status')"
        )
        rows = cursor.fetchall()
    if not rows or rows[0][0] <= 0:
        return {}  # never analysed: nothing to go on
    freqs = {
        name: dict(zip(values or [], frequencies or [], strict=False))
        for _, name, values, frequencies in rows
    }
    total = rows[0][0]
    guesses = {}
    for queue_id, status in pairs:
        by_queue = freqs.get("queue_id", {}).get(str(queue_id))
        by_status = freqs.get("status", {}).get(status)
        if by_queue is not None and by_status is not None:
            guesses[(queue_id, status)] = int(total * by_queue * by_status)
    return guesses


StatusCounts = dict[str, Tally]
"""Jobs of one queue by status, every status present."""


def status_counts(queues: Sequence[Queue] | None = None, *, bounded: bool = False) -> dict[int, StatusCounts]:
    """{queue id: {status: Tally}} for ``queues`` (every queue when None).

    Exact counts come from one grouped query. ``bounded`` counts (the console's) are
    exact for waiting and running jobs, which change every second and which an
    operator acts on, and may be estimates for huge finished statuses, so that a page
    or a poller tick never walks a million succeeded rows.
    """
    if queues is None:
        queues = list(Queue.objects.all())
    found = _bounded(queues) if bounded else _exact(queues)
    return {
        queue.id: {status: found.get((queue.id, status), Tally(0, True)) for status in Status.values}
        for queue in queues
    }


def _exact(queues: Sequence[Queue]) -> dict[tuple[int, str], Tally]:
    rows = (
        Job.objects.filter(queue_id__in=[queue.id for queue in queues])
        .values_list("queue_id", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {(queue_id, status): Tally(n, True) for queue_id, status, n in rows}


def _bounded(queues: Sequence[Queue]) -> dict[tuple[int, str], Tally]:
    pairs = [(queue.id, status) for queue in queues for status in Status.values]
    guesses = table_estimates([pair for pair in pairs if pair[1] in TERMINAL])
    huge = {pair for pair, guess in guesses.items() if guess > 2 * EXACT_UP_TO}
    result: dict[tuple[int, str], Tally] = {pair: Tally(guesses[pair], False) for pair in huge}
    for (queue_id, status), n in capped_counts([pair for pair in pairs if pair not in huge]).items():
        if n <= EXACT_UP_TO:
            result[(queue_id, status)] = Tally(n, True)
        else:
            jobs = Job.objects.filter(queue_id=queue_id, status=status)
            result[(queue_id, status)] = estimate(jobs, floor=n)
    return result


def as_numbers(counts: StatusCounts) -> dict[str, int]:
    """{status: jobs} as plain numbers, for JSON readers."""
    return {status: tally.value for status, tally in counts.items()}
