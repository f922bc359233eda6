"""PostgreSQL: SKIP LOCKED claims and LISTEN/NOTIFY wake-ups."""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection

from .base import Engine

NOTIFY_CHANNEL = "taskweb_jobs"


class PostgresEngine(Engine):
    vendor = "postgresql"
    # Inside the CTE, SKIP LOCKED lets concurrent workers each take different rows
    # without waiting, and the CTE keeps the planner from locking past the LIMIT.
    lock_clause = "FOR UPDATE SKIP LOCKED"
    json_placeholder = "%s::jsonb"
    has_callback_sql = "meta ? 'callback_url'"

    def notify(self, queue_names: Sequence[str]) -> None:
        # Delivered only when the caller's transaction commits; PostgreSQL folds
        # identical notifications inside one transaction into one.
        with connection.cursor() as cursor:
            for name in sorted(set(queue_names)):
                cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, name])
