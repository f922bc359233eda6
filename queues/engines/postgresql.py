"""PostgreSQL: SKIP LOCKED claims and LISTEN/NOTIFY wake-ups."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connection

from ..states import Outcome, Status
from .base import INSERT_COLUMNS, SUCCEED_UPDATE, Engine
from .rows import Succeeded

NOTIFY_CHANNEL = "taskweb_jobs"

# running -> succeeded for a batch (TRANSITIONS["succeed"]), guarded by status, attempt and
# worker, and the attempt history of the rows it changed, in one statement.
SUCCEED_SQL = (
    """
WITH done(id, attempt, result, started_at, finished_at, duration) AS (VALUES {values}),
updated AS ("""
    + SUCCEED_UPDATE
    + """)
INSERT INTO queues_attempt (job_id, number, worker_id, started_at, finished_at, duration, outcome,
    error_type, error_message, traceback)
SELECT done.id, done.attempt, %s, done.started_at::timestamptz, done.finished_at::timestamptz,
    done.duration, %s, '', '', ''
FROM done JOIN updated ON updated.id = done.id
RETURNING job_id
"""
)


class PostgresEngine(Engine):
    vendor = "postgresql"
    # Inside the CTE, SKIP LOCKED lets concurrent workers each take different rows
    # without waiting, and the CTE keeps the planner from locking past the LIMIT.
    lock_clause = "FOR UPDATE SKIP LOCKED"
    json_placeholder = "%s::jsonb"
    has_callback_sql = "meta ?| array['callback_url', 'workflow']"

    suspect_time_sql = (
        "({c} < '0001-01-02 00:00:00+00'::timestamptz OR {c} > '9999-12-30 00:00:00+00'::timestamptz)"
    )
    json_type_sql = "jsonb_typeof({c})"
    # A value nesting past ``depth`` has an item at that level. (No size test first: a deep
    # value compresses to a few bytes.)
    suspect_depth_sql = "jsonb_path_exists({c}, 'strict $.**{{{depth}}}')"

    def succeed(self, worker_id: str, rows: Sequence[Succeeded], now: datetime) -> set[int]:
        """One statement for the whole batch: the guarded UPDATE feeds the attempt history
        INSERT through a data-modifying CTE, so each flush costs one round trip less."""
        values, params = self._values(rows, Succeeded.HISTORY_COLUMNS, json_columns={"result"})
        with connection.cursor() as cursor:
            cursor.execute(
                SUCCEED_SQL.format(values=values),
                [
                    *params,
                    *(Status.SUCCEEDED.value, self.dt(now), self.dt(now), Status.RUNNING.value, worker_id),
                    *(worker_id, Outcome.SUCCEEDED.value),  # the attempt rows
                ],
            )
            return {row[0] for row in cursor.fetchall()}

    insert_job_is_one_statement = True

    def insert_job(self, row: dict[str, Any], counted: Sequence[Any]) -> int:
        """Insert, count and notify in one statement: one round trip, and atomic on its own."""
        insert, params = self._insert_job_statement(row)
        count, count_params = self.minute_stats_statement([counted])
        sql = (
            f"WITH job AS ({insert}), counted AS ({count}), "
            "woken AS (SELECT pg_notify(%s, %s)) "
            # A plain SELECT in a CTE runs only if referenced; the writes always run.
            "SELECT job.id FROM job CROSS JOIN woken"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, *count_params, NOTIFY_CHANNEL, counted[1]])
            return cursor.fetchone()[0]

    def insert_jobs(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Take ids from the sequence in one query, then COPY the rows in: far cheaper
        per row than INSERT statements, and still inside the caller's transaction."""
        if not rows:
            return []
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('queues_job', 'id')) FROM generate_series(1, %s)",
                [len(rows)],
            )
            ids = [row[0] for row in cursor.fetchall()]
            with cursor.cursor.copy(f"COPY queues_job ({', '.join(INSERT_COLUMNS)}) FROM STDIN") as copy:
                for job_id, row in zip(ids, rows, strict=True):
                    copy.write_row(self._insert_values(job_id, row))
        return ids

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """COPY, as for jobs: one round trip for any number of rows."""
        if rows:
            with (
                connection.cursor() as cursor,
                cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)

    def notify(self, queue_names: Sequence[str]) -> None:
        # Delivered only when the caller's transaction commits; PostgreSQL folds
        # identical notifications inside one transaction into one.
        with connection.cursor() as cursor:
            for name in sorted(set(queue_names)):
                cursor.execute("SELECT pg_notify(%s, %s)", [NOTIFY_CHANNEL, name])
