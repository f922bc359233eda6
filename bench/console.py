"""Console speed on a big table: page render times and the database time of one live tick.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/taskweb_bench \\
        .venv/bin/python bench/console.py --jobs 1000000

Fills the jobs table (PostgreSQL, with generate_series: about a minute for a million
rows) unless it already holds that many, then renders every console page a few times
through Django's test client and prints the median, and runs the live poller's tick
with every topic watched after a burst of changes, printing the database time it took.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskweb.settings")

import django

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from queues import lifecycle  # noqa: E402
from queues.console import render  # noqa: E402
from queues.console.events import DEAD, JOBS, OVERVIEW, WORKERS, job_topic, queue_topic  # noqa: E402
from queues.console.ticks import Tick  # noqa: E402
from queues.models import DeadLetter, Job, Queue, Worker  # noqa: E402

QUEUES = ("default", "mail", "reports", "images")
TASKS = (
    "taskweb.tasks.send_email",
    "taskweb.tasks.resize_image",
    "taskweb.tasks.csv_stats",
    "taskweb.tasks.long_report",
    "taskweb.tasks.flaky",
)
# Per mille of the table in each status: what a week of retention looks like.
MIX = (("succeeded", 930), ("dead", 30), ("queued", 20), ("scheduled", 10), ("running", 1), ("cancelled", 9))

AGE = "%(now)s::timestamptz - make_interval(secs => (%(stop)s - g) * 0.6)"
"""Jobs spread over the last week, newest ids newest, one every 0.6 s."""
FILL_SQL = """
INSERT INTO queues_job ({columns})
SELECT {values}
FROM generate_series(%(start)s, %(stop)s) AS g
"""


def status_case() -> str:
    branches, edge = [], 0
    for status, share in MIX:
        edge += share
        branches.append(f"WHEN g %% 1000 < {edge} THEN '{status}'")
    return "CASE " + " ".join(branches) + " END"


def fill(total: int) -> None:
    """Insert jobs in one statement per 100k rows; every column not set here gets its model default."""
    queue_ids = [Queue.objects.get_or_create(name=name)[0].id for name in QUEUES]
    now = timezone.now()
    exprs = {
        "queue_id": f"(ARRAY{queue_ids})[1 + g %% {len(queue_ids)}]",
        "task_path": f"(ARRAY{list(TASKS)})[1 + g %% {len(TASKS)}]",
        "args": "jsonb_build_array('user-' || g || '@example.com', g)",
        "status": status_case(),
        "attempts": "1",
        "enqueued_at": AGE,
        "run_after": AGE,
        "updated_at": f"{AGE} - interval '5 seconds'",
        "finished_at": AGE,
        "last_error": "''",
    }
    columns, values, params = [], [], {"now": now}
    for field in Job._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(field.column)
        if field.column in exprs:
            values.append(exprs[field.column])
        else:
            default = field.get_default()
            params[field.column] = (
                json.dumps(default) if field.get_internal_type() == "JSONField" else default
            )
            values.append(f"%({field.column})s")
    sql = FILL_SQL.format(columns=", ".join(columns), values=", ".join(values))
    start = Job.objects.count() + 1
    with connection.cursor() as cursor:
        for lo in range(start, total + 1, 100_000):
            cursor.execute(sql, {**params, "start": lo, "stop": min(lo + 99_999, total)})
            print(f"  {min(lo + 99_999, total):,} jobs", flush=True)
        cursor.execute(
            "INSERT INTO queues_deadletter (job_id, queue_name, task_path, reason, error_type, error_message,"
            " traceback, created_at, replayed_by) SELECT j.id, q.name, j.task_path, 'attempts exhausted',"
            " 'builtins.RuntimeError', 'flaky task failed (' || (j.id % 7) || ')',"
            " 'Traceback (most recent call last):\n  ...', j.finished_at, '' FROM queues_job j"
            " JOIN queues_queue q ON q.id = j.queue_id WHERE j.status = 'dead'"
            " AND NOT EXISTS (SELECT 1 FROM queues_deadletter d WHERE d.job_id = j.id)"
        )
        cursor.execute("VACUUM ANALYZE")  # what autovacuum would have done by now
    for n in range(4):
        lifecycle.register_worker(Worker(id=f"bench-{n}", hostname="bench", pid=n + 1, concurrency=8))


def median_ms(call: Callable[[], object], repeat: int) -> float:
    call()  # warm caches and connections, as a running site has them
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def pages(repeat: int) -> list[tuple[str, float]]:
    user, _ = User.objects.get_or_create(username="bench", defaults={"is_staff": True, "is_superuser": True})
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    dead_job = DeadLetter.objects.order_by("-id").values_list("job_id", flat=True).first()
    middle = Job.objects.order_by("-id").values_list("id", flat=True).first() // 2  # a page deep in the table
    urls = [
        "/",
        "/queues/default/",
        "/jobs/",
        f"/jobs/?before={middle}",
        "/jobs/?status=dead&queue=mail",
        f"/jobs/?task={TASKS[0]}",
        "/jobs/?q=user-999999%40",
        f"/jobs/{dead_job}/",
        "/dead/",
        "/dead/?error_type=builtins.RuntimeError&error_message=flaky+task+failed+%283%29",
        "/workers/",
    ]
    results = []
    for url in urls:

        def get(url: str = url) -> None:
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)

        results.append((url, median_ms(get, repeat)))
    return results


class DbTimer:
    """Adds up the time spent inside the database driver."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.queries = 0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.queries += 1


def live_tick(changes: int, repeat: int, recount: bool) -> list[tuple[float, float, int]]:
    """(db ms, total ms, queries) of ticks after ``changes`` job updates, every topic watched.

    With ``recount`` each measured tick is one of the periodic full recounts (every 5 s,
    or when a worker comes or goes), which also re-reads the oldest waiting jobs.
    """
    job_id = Job.objects.order_by("-id").values_list("id", flat=True).first()
    topics = {OVERVIEW, WORKERS, JOBS, DEAD, job_topic(job_id), *(queue_topic(q) for q in QUEUES)}
    tick = Tick()
    tick.run(topics, set(topics))
    results = []
    for _ in range(repeat):
        with connection.cursor() as cursor:  # a burst of worker activity: claims and finishes
            cursor.execute(
                "UPDATE queues_job SET updated_at = %s, status = CASE status WHEN 'queued' THEN 'running'"
                " ELSE 'succeeded' END WHERE id IN (SELECT id FROM queues_job WHERE status IN"
                " ('queued', 'running') ORDER BY id DESC LIMIT %s)",
                [timezone.now(), changes],
            )
        if recount:
            tick.last_resync = 0.0
        timer = DbTimer()
        started = time.perf_counter()
        with connection.execute_wrapper(timer):
            for update in tick.run(topics, set()):
                render.shared(update)  # the fragments every socket of a topic shares
        results.append((timer.seconds * 1000, (time.perf_counter() - started) * 1000, timer.queries))
        time.sleep(0.5)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--changes", type=int, default=500, help="jobs changed before each measured tick")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Run this on PostgreSQL: set DATABASE_URL to a scratch database.")
    logging.getLogger("taskweb.request").setLevel(logging.WARNING)  # one line per request otherwise
    call_command("migrate", verbosity=0)
    if (have := Job.objects.count()) < args.jobs:
        print(f"Filling {args.jobs - have:,} jobs...", flush=True)
        fill(args.jobs)
    print(f"\n{Job.objects.count():,} jobs, {DeadLetter.objects.count():,} dead letters, PostgreSQL\n")
    print(f"{'page':<80} median ms")
    for url, ms in pages(args.repeat):
        print(f"{url:<80} {ms:8.1f}")
    for recount, name in ((False, "live tick"), (True, "live tick with the periodic full recount")):
        ticks = live_tick(args.changes, args.repeat, recount)
        db_ms = [t[0] for t in ticks]
        print(f"\n{name}, every topic watched, {args.changes} jobs changed before each tick:")
        print(f"  database time  median {statistics.median(db_ms):.1f} ms, max {max(db_ms):.1f} ms")
        print(f"  whole tick     median {statistics.median(t[1] for t in ticks):.1f} ms (rendering included)")
        print(f"  queries        {ticks[0][2]} per tick")


if __name__ == "__main__":
    main()
