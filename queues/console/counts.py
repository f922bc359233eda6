"""Counts that stay fast on tables of millions of rows.

A count is exact up to ``EXACT_UP_TO`` rows (a capped index scan that stops
there); above that, PostgreSQL's planner estimate is shown as "~1.2M" instead of
scanning every row. SQLite, the single-machine engine, simply counts.
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
