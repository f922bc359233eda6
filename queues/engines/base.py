"""What every engine provides, and the SQL that PostgreSQL and SQLite share."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import connection

from ..models import Job
from ..quarantine import JSON_TYPES, TIME_COLUMNS
from ..states import LIVE, Outcome, Status
from .rows import ClaimQuery, ClaimRow, Succeeded

if TYPE_CHECKING:
    from ..flow_control import ClaimLimits

CLAIM_SQL = """
WITH picked AS (
    SELECT id FROM queues_job
    WHERE status = 'queued'
      AND run_after <= %s
      -- raw jobs carry only a text payload: TCP clients take them, never runworker.
      AND task_path {raw_op} %s
      AND queue_id IN (SELECT id FROM queues_queue WHERE NOT paused{queue_filter})
    -- Exactly the partial index job_claimable (status = 'queued', in this order): the scan
    -- reads it in order and stops after LIMIT rows, whatever the table's statistics say.
    -- Scheduled jobs are not read here: maintenance.promote_due makes them queued first.
    ORDER BY priority DESC, run_after, id
    LIMIT %s
    {lock}
)
"""
CLAIM_UPDATE = """
UPDATE queues_job
SET status = %s, attempts = attempts + 1, worker_id = %s, started_at = %s,
    updated_at = %s, lease_expires_at = %s, progress = 0, progress_message = ''
WHERE id IN (SELECT id FROM picked)
-- Times come back as text, which no value can fail to decode: one unreadable run_after
-- must not break the claim of the whole batch (lifecycle.leases.claim checks each row).
RETURNING id, task_path, args, kwargs, attempts, attempt_offset, max_attempts, timeout, queue_id,
    {has_callback}, priority, CAST(run_after AS TEXT)
"""
CLAIM_SQL += CLAIM_UPDATE

# The claim when flow control applies (queues.flow_control): the same index scan, minus the
# queues and tasks with nothing left to start, then each queue held to its budget.
FLOW_CLAIM_SQL = (
    """
WITH candidates AS (
    SELECT id, queue_id, task_path, priority, run_after FROM queues_job
    WHERE status = 'queued'
      AND run_after <= %s
      AND task_path {raw_op} %s
      AND queue_id IN (SELECT id FROM queues_queue WHERE NOT paused{queue_filter}){skip}
    ORDER BY priority DESC, run_after, id
    LIMIT %s
    {lock}
),
-- Numbering only the (at most LIMIT) candidates keeps this cheap. Ranks within a
-- queue hold it to its budget; ranks within a task let a half-open circuit's
-- task through exactly once (its probe).
ranked AS (
    SELECT id,
        ROW_NUMBER() OVER (PARTITION BY queue_id ORDER BY priority DESC, run_after, id) AS queue_rank,
        ROW_NUMBER() OVER (PARTITION BY task_path ORDER BY priority DESC, run_after, id) AS task_rank,
        queue_id, task_path
    FROM candidates
),
picked AS (
    SELECT id FROM ranked WHERE queue_rank <= {queue_budget} AND task_rank <= {task_budget}
)
"""
    + CLAIM_UPDATE
)

# reserved -> running for the jobs a worker hands to idle children now (TRANSITIONS["start"]).
START_SQL = """
UPDATE queues_job SET status = 'running', started_at = %s, updated_at = %s
WHERE id IN ({ids}) AND status = 'reserved' AND worker_id = %s{circuits}
RETURNING id
"""
# With circuit breakers on, a job whose task's circuit opened since the claim does not start:
# the claim honoured the breaker, and so must a job that waited reserved meanwhile.
START_CIRCUITS = "\n  AND task_path NOT IN (SELECT task_path FROM queues_circuit WHERE state = 'open')"


# running -> succeeded for the jobs of a batch ``done`` (TRANSITIONS["succeed"]), guarded by
# status, attempt and worker. PostgreSQL feeds it to the attempt history in the same statement.
SUCCEED_UPDATE = """
UPDATE queues_job SET status = %s, result = done.result, finished_at = %s, updated_at = %s,
    lease_expires_at = NULL, progress = 100
FROM done
WHERE queues_job.id = done.id AND queues_job.attempts = done.attempt
  AND queues_job.status = %s AND queues_job.worker_id = %s
RETURNING queues_job.id
"""
SUCCEED_SQL = "WITH done(id, attempt, result) AS (VALUES {values})" + SUCCEED_UPDATE
INSERT_SUCCEEDED_ATTEMPT_SQL = """
INSERT INTO queues_attempt (job_id, number, worker_id, started_at, finished_at, duration, outcome,
    error_type, error_message, traceback)
VALUES (%s, %s, %s, %s, %s, %s, %s, '', '', '')
"""

# Every column of a new job row, in the order bulk inserts write them.
INSERT_COLUMNS = (
    "id", "queue_id", "task_path", "args", "kwargs", "priority", "status", "attempts",
    "attempt_offset", "max_attempts", "timeout", "run_after", "idempotency_key", "progress",
    "progress_message", "enqueued_at", "updated_at", "last_error", "meta",
)  # fmt: skip
NEW_JOB_DEFAULTS = {
    "attempts": 0,
    "attempt_offset": 0,
    "progress": 0,
    "progress_message": "",
    "last_error": "",
}


# Jobs holding a value no reader can decode (queues.quarantine): the WHERE clause finds
# suspects cheaply in SQL, and Python decides from the text each suspect returns.
SUSPECTS_SQL = """
SELECT j.id, j.status, j.attempts, j.task_path, q.name, {times}, {json}
FROM queues_job j JOIN queues_queue q ON q.id = j.queue_id
WHERE ({suspect}){live}
ORDER BY j.id
LIMIT %s
"""


def _listed(statuses: Iterable[str]) -> str:
    """Statuses as an SQL list: they are this module's own constants, never input."""
    return ", ".join(f"'{status}'" for status in statuses)


class Engine:
    vendor: str = ""
    lock_clause: str = ""
    json_placeholder: str = "%s"
    # Whether finishing a claimed job has follow-ups (a completion webhook, or a workflow
    # whose step it is), so finishing a plain job needs no lookup.
    has_callback_sql: str = (
        "(json_extract(meta, '$.callback_url') IS NOT NULL OR json_extract(meta, '$.workflow') IS NOT NULL)"
    )

    def dt(self, value: datetime) -> Any:
        """A datetime as this database wants it in a raw query parameter."""
        return connection.ops.adapt_datetimefield_value(value)

    def claim(self, query: ClaimQuery) -> list[ClaimRow]:
        """Take the jobs ``query`` asks for, in one statement."""
        sql, params = self.claim_statement(query)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [ClaimRow(*row) for row in cursor.fetchall()]

    def start(
        self, worker_id: str, job_ids: Sequence[int], at: datetime, honour_circuits: bool = False
    ) -> set[int]:
        """Mark reserved jobs of ``worker_id`` running from ``at``, except, if
        ``honour_circuits``, those of a task whose circuit is open; returns the ids started."""
        if not job_ids:
            return set()
        circuits = START_CIRCUITS if honour_circuits else ""
        sql = START_SQL.format(ids=", ".join(["%s"] * len(job_ids)), circuits=circuits)
        with connection.cursor() as cursor:
            cursor.execute(sql, [self.dt(at), self.dt(at), *job_ids, worker_id])
            return {row[0] for row in cursor.fetchall()}

    def claim_statement(self, query: ClaimQuery) -> tuple[str, list[Any]]:
        queue_filter = ""
        now = self.dt(query.now)
        params: list[Any] = [now, Job.RAW_TASK]
        if query.queue_names:
            queue_filter = f" AND name IN ({', '.join(['%s'] * len(query.queue_names))})"
            params.extend(query.queue_names)
        parts = {
            "queue_filter": queue_filter,
            "lock": self.lock_clause,
            "raw_op": "=" if query.raw else "<>",
            "has_callback": self.has_callback_sql,
        }
        if query.limits is None:
            sql = CLAIM_SQL.format(**parts)
            params.append(query.limit)
        else:
            sql, limit_params = self._flow_parts(parts, query.limit, query.limits)
            params += limit_params
        status, started_at = (Status.RUNNING, now) if query.raw else (Status.RESERVED, None)
        params += [status.value, query.worker_id, started_at, now, self.dt(query.lease_until)]
        return sql, params

    def _flow_parts(self, parts: dict[str, str], limit: int, limits: ClaimLimits) -> tuple[str, list[Any]]:
        skip, params = "", []
        for column, values in (("queue_id", limits.skip_queues), ("task_path", limits.skip_tasks)):
            if values:
                skip += f"\n      AND {column} NOT IN ({', '.join(['%s'] * len(values))})"
                params.extend(values)
        params.append(limit)
        budgets = []
        for column, per_key in (("queue_id", limits.queue_budgets), ("task_path", limits.task_budgets)):
            if per_key:
                whens = " ".join(["WHEN %s THEN %s"] * len(per_key))
                budgets.append(f"CASE {column} {whens} ELSE %s END")
                params += [value for pair in per_key.items() for value in pair] + [limit]
            else:
                budgets.append("%s")
                params.append(limit)
        sql = FLOW_CLAIM_SQL.format(**parts, skip=skip, queue_budget=budgets[0], task_budget=budgets[1])
        return sql, params

    def succeed(self, worker_id: str, rows: Sequence[Succeeded], now: datetime) -> set[int]:
        """Mark running jobs of ``worker_id`` succeeded, each only if that attempt still holds it,
        and record each applied attempt in the history. Returns the ids applied."""
        values, params = self._values(rows, Succeeded.COLUMNS, json_columns={"result"})
        with connection.cursor() as cursor:
            cursor.execute(
                SUCCEED_SQL.format(values=values),
                [
                    *params,
                    Status.SUCCEEDED.value,
                    self.dt(now),
                    self.dt(now),
                    Status.RUNNING.value,
                    worker_id,
                ],
            )
            applied = {row[0] for row in cursor.fetchall()}
            cursor.executemany(
                INSERT_SUCCEEDED_ATTEMPT_SQL,
                [self._succeeded_attempt(worker_id, row) for row in rows if row.id in applied],
            )
        return applied

    def _succeeded_attempt(self, worker_id: str, row: Succeeded) -> tuple[Any, ...]:
        started, finished = self.dt(row.started_at), self.dt(row.finished_at)
        return (row.id, row.attempt, worker_id, started, finished, row.duration, Outcome.SUCCEEDED.value)

    def _values(
        self,
        rows: Sequence[Any],
        columns: Sequence[str],
        json_columns: frozenset[str] | set[str] = frozenset(),
    ) -> tuple[str, list[Any]]:
        """``(%s, ...), ...`` for a VALUES list of dataclass rows, and its parameters."""
        row_sql = "(" + ", ".join(self.json_placeholder if c in json_columns else "%s" for c in columns) + ")"
        params = [self._param(getattr(row, column)) for row in rows for column in columns]
        return ", ".join([row_sql] * len(rows)), params

    def _param(self, value: Any) -> Any:
        return self.dt(value) if isinstance(value, datetime) else value

    insert_job_is_one_statement = False  # True: no transaction needed around insert_job

    def insert_job(self, row: dict[str, Any], counted: Sequence[Any]) -> int:
        """Insert one new job, add it to the enqueued count (``counted`` is a minute-stats
        row) and wake the queue's workers; returns its id. Call inside a transaction."""
        with connection.cursor() as cursor:
            cursor.execute(*self._insert_job_statement(row))
            job_id = cursor.fetchone()[0]
        self.upsert_minute_stats([counted])
        return job_id

    def _insert_job_statement(self, row: dict[str, Any]) -> tuple[str, list[Any]]:
        columns = INSERT_COLUMNS[1:]
        sql = (
            f"INSERT INTO queues_job ({', '.join(columns)}) "
            f"VALUES ({', '.join(['%s'] * len(columns))}) RETURNING id"
        )
        return sql, self._insert_values(0, row)[1:]

    def insert_jobs(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert new jobs (column values from ``lifecycle.enqueue._job_fields``); returns their ids in order.

        Runs inside the caller's transaction. SQLite holds the database write lock for
        the whole transaction (IMMEDIATE), so the next ids are simply max(id) + 1.
        """
        if not rows:
            return []
        with connection.cursor() as cursor:
            cursor.execute("SELECT COALESCE(MAX(id), 0) FROM queues_job")
            first = cursor.fetchone()[0] + 1
            ids = list(range(first, first + len(rows)))
            placeholders = ", ".join(["%s"] * len(INSERT_COLUMNS))
            cursor.executemany(
                f"INSERT INTO queues_job ({', '.join(INSERT_COLUMNS)}) VALUES ({placeholders})",
                [self._insert_values(job_id, row) for job_id, row in zip(ids, rows, strict=True)],
            )
        return ids

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert plain rows (no ids returned) with one statement run for each; inside the
        caller's transaction. For the many small rows of a workflow's steps and edges."""
        if rows:
            sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
            with connection.cursor() as cursor:
                cursor.executemany(sql, rows)

    def _insert_values(self, job_id: int, row: dict[str, Any]) -> list[Any]:
        values = {**NEW_JOB_DEFAULTS, **row, "id": job_id}
        for name in ("run_after", "enqueued_at", "updated_at"):
            values[name] = self.dt(values[name])
        return [values[name] for name in INSERT_COLUMNS]

    # SQL (with {c} for the column) that is true for every stored time Python may fail to
    # read, its JSON type, and true for every JSON value that may nest past ``depth``.
    suspect_time_sql: str = ""
    json_type_sql: str = ""
    suspect_depth_sql: str = ""

    def suspect_jobs(self, live_only: bool, limit: int, depth: int) -> list[tuple]:
        """Up to ``limit`` jobs that may hold an unreadable value, with every such value as text:
        (id, status, attempts, task_path, queue name, *TIME_COLUMNS as text, then per JSON
        column its JSON type and, if it may nest too deep, its text). Decodes nothing."""
        deep = {c: self.suspect_depth_sql.format(c=f"j.{c}", depth=depth) for c in JSON_TYPES}
        types = {c: self.json_type_sql.format(c=f"j.{c}") for c in JSON_TYPES}
        suspect = [self.suspect_time_sql.format(c=f"j.{c}") for c in TIME_COLUMNS]
        suspect += [f"{types[c]} <> '{kind}'" for c, kind in JSON_TYPES.items() if kind]
        suspect += deep.values()
        suspect.append(f"j.status NOT IN ({_listed(Status.values)})")
        live = _listed(sorted(LIVE))
        sql = SUSPECTS_SQL.format(
            times=", ".join(f"CAST(j.{c} AS TEXT)" for c in TIME_COLUMNS),
            json=", ".join(
                f"{types[c]}, CASE WHEN {deep[c]} THEN CAST(j.{c} AS TEXT) END" for c in JSON_TYPES
            ),
            suspect="\n    OR ".join(suspect),
            live=f" AND j.status IN ({live})" if live_only else "",
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [limit])
            return cursor.fetchall()

    def suspect_rows(
        self, table: str, pk: str, time_columns: Sequence[str], json_columns: dict[str, str], limit: int
    ) -> list[tuple]:
        """Up to ``limit`` rows of ``table`` that may hold a time Python cannot read or JSON of
        the wrong type: (pk, *time_columns as text, *the JSON type of each json_column).
        ``json_columns`` maps a column to the JSON type it must hold. Decodes nothing."""
        types = {self.json_type_sql.format(c=c): expected for c, expected in json_columns.items()}
        suspect = [self.suspect_time_sql.format(c=c) for c in time_columns]
        suspect += [f"{kind} <> '{expected}'" for kind, expected in types.items()]
        selected = [pk, *(f"CAST({c} AS TEXT)" for c in time_columns), *types]
        sql = f"SELECT {', '.join(selected)} FROM {table} WHERE {' OR '.join(suspect)} ORDER BY {pk} LIMIT %s"
        with connection.cursor() as cursor:
            cursor.execute(sql, [limit])
            return cursor.fetchall()

    def has_due_jobs(self, queue_names: Sequence[str] | None, now: datetime, raw: bool = False) -> bool:
        """A read-only look before claiming, so idle polling never takes a write lock."""
        return True

    def notify(self, queue_names: Sequence[str]) -> None:
        """Wake idle workers of these queues once the current transaction commits."""

    def upsert_minute_stats(self, rows: Sequence[Sequence[Any]]) -> None:
        """Add counts into the per-minute rollup; rows are
        (minute, queue_name, task_path, enqueued, succeeded, failed, retried, dead, runtime_sum)."""
        if rows:
            with connection.cursor() as cursor:
                cursor.execute(*self.minute_stats_statement(rows))

    def upsert_runtime_buckets(self, rows: Sequence[Sequence[Any]]) -> None:
        """Add counts into the run-time histogram; rows are (minute, queue_name, task_path, le, count)."""
        self._add_into("queues_runtimebucket", ("minute", "queue_name", "task_path", "le"), ("count",), rows)

    def _add_into(
        self, table: str, keys: Sequence[str], columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert rows (keys then columns, the first key a datetime), adding to the rows that exist."""
        if not rows:
            return
        with connection.cursor() as cursor:
            cursor.execute(*self._add_into_statement(table, keys, columns, rows))

    def _add_into_statement(
        self, table: str, keys: Sequence[str], columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> tuple[str, list[Any]]:
        width = len(keys) + len(columns)
        placeholders = ", ".join(["(" + ", ".join(["%s"] * width) + ")"] * len(rows))
        updates = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in columns)
        sql = (
            f"INSERT INTO {table} ({', '.join([*keys, *columns])}) VALUES {placeholders} "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
        )
        params = [self.dt(row[0]) if i == 0 else row[i] for row in rows for i in range(len(row))]
        return sql, params

    def minute_stats_statement(self, rows: Sequence[Sequence[Any]]) -> tuple[str, list[Any]]:
        return self._add_into_statement(
            "queues_minutestat",
            ("minute", "queue_name", "task_path"),
            ("enqueued", "succeeded", "failed", "retried", "dead", "runtime_sum"),
            rows,
        )
