"""SQLite: one writer at a time, so the claim statement alone is the lock."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from django.db import connection

from ..models import Job
from .base import Engine


class SQLiteEngine(Engine):
    vendor = "sqlite"
    # No row locks in SQLite: the UPDATE ... RETURNING statement runs under the
    # database write lock, so two workers can never pick the same row.
    lock_clause = ""

    # Django writes 'YYYY-MM-DD HH:MM:SS[.ffffff]'; anything SQLite cannot read as a time,
    # or reads only after moving it (February 31st), or out of Python's years, is suspect.
    suspect_time_sql = (
        "({c} IS NOT NULL AND (typeof({c}) <> 'text' OR {c} NOT GLOB '[0-9][0-9][0-9][0-9]-*' "
        "OR datetime({c}) IS NULL OR datetime({c}, '+0 days') <> datetime({c}) "
        "OR {c} < '0001-01-02' OR {c} > '9999-12-30'))"
    )
    json_type_sql = "(CASE WHEN json_valid({c}) THEN json_type({c}) ELSE 'invalid' END)"
    # json_tree's path of a node names each level above it: a deep value has a long path
    # (and is long itself: two characters a level).
    suspect_depth_sql = (
        "(CASE WHEN json_valid({c}) AND length({c}) > 2 * {depth} THEN EXISTS (SELECT 1 FROM json_tree({c}) "
        "WHERE length(path) - length(replace(replace(path, '[', ''), '.', '')) >= {depth} - 1) ELSE 0 END)"
    )

    def has_due_jobs(self, queue_names: Sequence[str] | None, now: datetime, raw: bool = False) -> bool:
        queue_filter, params = "", [self.dt(now), Job.RAW_TASK]
        if queue_names:
            queue_filter = f" AND name IN ({', '.join(['%s'] * len(queue_names))})"
            params.extend(queue_names)
        sql = (
            "SELECT 1 FROM queues_job WHERE status = 'queued' AND run_after <= %s "
            f"AND task_path {'=' if raw else '<>'} %s "
            f"AND queue_id IN (SELECT id FROM queues_queue WHERE NOT paused{queue_filter}) LIMIT 1"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone() is not None
