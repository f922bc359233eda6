"""What every engine provides, and the SQL that PostgreSQL and SQLite share."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection

from ..models import Job
from ..states import WAITING, Status

JOB = "queues_job"
QUEUE = "queues_queue"

CLAIM_SQL = """
WITH picked AS (
    SELECT id FROM queues_job
    WHERE status IN ({waiting})
      AND run_after <= %s
      -- raw jobs carry only a text payload: TCP clients take them, never runworker.
      AND task_path {raw_op} %s
      AND queue_id IN (SELECT id FROM queues_queue WHERE NOT paused{queue_filter})
    -- Matches the partial index job_claimable, so the scan stops after LIMIT rows.
    ORDER BY priority DESC, run_after, id
    LIMIT %s
    {lock}
)
UPDATE queues_job
SET status = %s, attempts = attempts + 1, worker_id = %s, started_at = %s,
    updated_at = %s, lease_expires_at = %s, progress = 0, progress_message = ''
WHERE id IN (SELECT id FROM picked)
RETURNING id, task_path, args, kwargs, attempts, attempt_offset, max_attempts, timeout, queue_id
"""


class Engine:
    vendor: str = ""
    lock_clause: str = ""
    json_placeholder: str = "%s"

    def dt(self, value: datetime) -> Any:
        """A datetime as this database wants it in a raw query parameter."""
        return connection.ops.adapt_datetimefield_value(value)

    def claim(
        self,
        *,
        worker_id: str,
        queue_names: Sequence[str] | None,
        limit: int,
        now: datetime,
        lease_until: datetime,
        raw: bool = False,
    ) -> list[tuple]:
        """Mark up to ``limit`` due jobs running for ``worker_id`` in one statement."""
        sql, params = self.claim_statement(worker_id, queue_names, limit, now, lease_until, raw)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def claim_statement(
        self,
        worker_id: str,
        queue_names: Sequence[str] | None,
        limit: int,
        now: datetime,
        lease_until: datetime,
        raw: bool = False,
    ) -> tuple[str, list[Any]]:
        queue_filter = ""
        params: list[Any] = [self.dt(now), Job.RAW_TASK]
        if queue_names:
            queue_filter = f" AND name IN ({', '.join(['%s'] * len(queue_names))})"
            params.extend(queue_names)
        params += [limit, Status.RUNNING.value, worker_id, self.dt(now), self.dt(now), self.dt(lease_until)]
        sql = CLAIM_SQL.format(
            waiting=", ".join(f"'{status.value}'" for status in sorted(WAITING)),
            queue_filter=queue_filter,
            lock=self.lock_clause,
            raw_op="=" if raw else "<>",
        )
        return sql, params

    def has_due_jobs(self, queue_names: Sequence[str] | None, now: datetime, raw: bool = False) -> bool:
        """A read-only look before claiming, so idle polling never takes a write lock."""
        return True

    def notify(self, queue_names: Sequence[str]) -> None:
        """Wake idle workers of these queues once the current transaction commits."""

    def values_cte(self, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], json_columns: frozenset[str] = frozenset()) -> tuple[str, list[Any]]:
        """``WITH name(columns) AS (VALUES ...)`` for a batch update joined on id."""
        row_sql = "(" + ", ".join(
            self.json_placeholder if column in json_columns else "%s" for column in columns
        ) + ")"
        sql = f"WITH {name}({', '.join(columns)}) AS (VALUES {', '.join([row_sql] * len(rows))})"
        return sql, [value for row in rows for value in row]

    def upsert_minute_stats(self, rows: Sequence[Sequence[Any]]) -> None:
        """Add counts into the per-minute rollup; rows are
        (minute, queue_name, task_path, enqueued, succeeded, failed, retried, dead, runtime_sum)."""
        if not rows:
            return
        columns = ("enqueued", "succeeded", "failed", "retried", "dead", "runtime_sum")
        placeholders = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(rows))
        updates = ", ".join(f"{c} = queues_minutestat.{c} + excluded.{c}" for c in columns)
        sql = (
            "INSERT INTO queues_minutestat (minute, queue_name, task_path, "
            f"{', '.join(columns)}) VALUES {placeholders} "
            f"ON CONFLICT (minute, queue_name, task_path) DO UPDATE SET {updates}"
        )
        params = [self.dt(row[0]) if i == 0 else row[i] for row in rows for i in range(len(row))]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
