"""What the database says happened: the chaos suite's invariants, read with plain SQL.

Every chaos job (``tests.tasks.chaos_mark``) writes one row per execution into
``chaos_runs`` before doing anything else, so a run cut short by a kill still
counts. The audit compares those rows with the jobs and their attempt history:

- lost: a job missing, ending in any status but ``succeeded`` (or still waiting),
  or succeeded without a run of its final attempt;
- stuck: a job still ``running`` at the end;
- duplicated: a run that nothing explains. A job may run more than once only if
  each earlier run belongs to an attempt that the history records as killed (lost
  worker, stopped child, timeout); two runs of one attempt, two recorded successes,
  or a run of an attempt with no history row are duplicates.

The queries are plain SQL on a DB-API connection (psycopg or sqlite3), so the
same audit serves the pytest run (on its test database) and bench/chaos.py (on
databases it makes), whatever Django connection the caller has.
"""

from __future__ import annotations

import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

RUNS_TABLE = "chaos_runs"
KILLED = {"lost", "timeout"}
"""Attempt outcomes that mean the attempt was cut short from outside the task."""
KILLED_ERRORS = {
    "queues.exceptions.WorkerLost",
    "queues.exceptions.WorkerChildDied",
    "builtins.TimeoutError",
}


class Db:
    """A plain connection to a DATABASE_URL (postgres:// or sqlite:///), in autocommit."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = urlparse(url)
        if parsed.scheme == "sqlite":
            self.vendor = "sqlite"
            path = "/" + parsed.path.lstrip("/")
            self.conn: Any = sqlite3.connect(path, timeout=30, isolation_level=None)
        else:
            import psycopg

            self.vendor = "postgresql"
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=5)

    def rows(self, sql: str) -> list[tuple]:
        cursor = self.conn.cursor()
        cursor.execute(sql)
        result = cursor.fetchall() if cursor.description else []
        cursor.close()
        return result

    def value(self, sql: str) -> Any:
        rows = self.rows(sql)
        return rows[0][0] if rows else None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Db:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def reset_runs(url: str) -> None:
    """(Re)create the table the chaos task counts its runs in."""
    with Db(url) as db:
        db.rows(f"DROP TABLE IF EXISTS {RUNS_TABLE}")
        db.rows(f"CREATE TABLE {RUNS_TABLE} (job_id bigint NOT NULL, attempt integer NOT NULL, pid integer)")


def unfinished(url: str) -> int:
    """Jobs not yet succeeded (waiting, running, or ended otherwise)."""
    with Db(url) as db:
        return db.value("SELECT count(*) FROM queues_job WHERE status <> 'succeeded'")


@dataclass
class Summary:
    """One scenario's result, as the suite prints it."""

    scenario: str
    jobs: int
    lost: int = 0
    duplicated: int = 0
    stuck: int = 0
    seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.stuck or self.problems)

    def line(self) -> str:
        extra = "".join(f" {key}={value}" for key, value in self.notes.items())
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"{self.scenario}: jobs={self.jobs} lost={self.lost} duplicated={self.duplicated} "
            f"stuck={self.stuck} time={self.seconds:.1f}s{extra} {verdict}"
        )

    def explain(self) -> str:
        return "\n".join([self.line(), *(f"  - {problem}" for problem in self.problems[:20])])


def audit(url: str, scenario: str, expected_jobs: int, seconds: float) -> Summary:
    """Check every job against its runs and its attempt history."""
    with Db(url) as db:
        jobs = db.rows("SELECT id, status, attempts FROM queues_job")
        runs = Counter(
            {
                (job_id, attempt): count
                for job_id, attempt, count in db.rows(
                    f"SELECT job_id, attempt, count(*) FROM {RUNS_TABLE} GROUP BY job_id, attempt"
                )
            }
        )
        history: dict[int, dict[int, list[tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
        for job_id, number, outcome, error_type in db.rows(
            "SELECT job_id, number, outcome, error_type FROM queues_attempt"
        ):
            history[job_id][number].append((outcome, error_type))
    summary = Summary(scenario, jobs=len(jobs), seconds=seconds)
    if len(jobs) < expected_jobs:
        summary.lost += expected_jobs - len(jobs)
        summary.problems.append(f"{expected_jobs - len(jobs)} of {expected_jobs} jobs are missing")
    runs_by_job: dict[int, dict[int, int]] = defaultdict(dict)
    for (job_id, attempt), count in runs.items():
        runs_by_job[job_id][attempt] = count
    rerun = 0
    for job_id, status, attempts in jobs:
        mine = runs_by_job.get(job_id, {})
        if status in ("reserved", "running"):
            summary.stuck += 1
            summary.problems.append(f"job {job_id} is stuck {status} (attempt {attempts})")
            continue
        if status != "succeeded" or attempts not in mine:
            summary.lost += 1
            summary.problems.append(f"job {job_id} ended {status} at attempt {attempts}; runs {sorted(mine)}")
            continue
        successes = sum(outcome == "succeeded" for rows in history[job_id].values() for outcome, _ in rows)
        unexplained = [
            attempt
            for attempt, count in mine.items()
            if count > 1 or (attempt != attempts and not _killed(history[job_id].get(attempt, [])))
        ]
        if successes != 1 or unexplained:
            summary.duplicated += 1
            summary.problems.append(
                f"job {job_id}: {successes} recorded successes; runs per attempt {mine}; "
                f"history {dict(history[job_id])}"
            )
        elif len(mine) > 1:
            rerun += 1
    summary.notes["rerun_after_kill"] = rerun
    return summary


def _killed(rows: list[tuple[str, str]]) -> bool:
    return len(rows) == 1 and (rows[0][0] in KILLED or rows[0][1] in KILLED_ERRORS)
