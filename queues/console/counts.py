"""Counts that stay fast on tables of millions of rows.

A count is exact up to ``EXACT_UP_TO`` rows (a capped index scan that stops
there); above that, PostgreSQL's planner estimate is shown as "~1.2M" instead of
scanning every row. SQLite, the single-machine engine, simply counts.

Per-queue counts of finished statuses (which only grow until pruned) start from the
column statistics instead: a status the statistics put far above the cap is shown
as an estimate without touching the table at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.db import connection
from django.db.models import QuerySet

EXACT_UP_TO = 10_000


@dataclass(frozen=True)
class Count:
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


def count(queryset: QuerySet) -> Count:
    """How many rows ``queryset`` matches, exact when small, estimated when huge."""
    capped = queryset.order_by()[: EXACT_UP_TO + 1].count()
    if capped <= EXACT_UP_TO:
        return Count(capped, True)
    return estimate(queryset, floor=capped)


def estimate(queryset: QuerySet, floor: int = 0) -> Count:
    if connection.vendor != "postgresql":
        return Count(queryset.order_by().count(), True)
    plan = json.loads(queryset.order_by().explain(format="json"))
    return Count(max(int(plan[0]["Plan"]["Plan Rows"]), floor), False)


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
