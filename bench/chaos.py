"""The chaos suite: Taskweb keeps its delivery promises while processes and servers break.

    python bench/chaos.py                 # all five scenarios at full size
    python bench/chaos.py --only 1,4      # some of them
    python bench/chaos.py --jobs 2000     # scenario 1 smaller (see --help for the rest)

Scenarios (tests/test_chaos.py runs the same functions at CI sizes):
1. 4 workers drain 20,000 jobs while a random worker is SIGKILLed every 2 s and restarted.
2. PostgreSQL (a private cluster on a spare port) restarts in the middle of a drain;
   workers and a web node reconnect by themselves.
3. Two daphne web nodes with channels-redis: a job finished by a worker shows on a
   WebSocket connected to either.
4. A worker is SIGSTOPped past its lease, its job is finished elsewhere, then SIGCONT:
   its late outcome must not overwrite the newer one.
5. SQLite: two workers and a web process on one file, 5,000 jobs, users never see
   "database is locked".

Each scenario prints one line (jobs, lost, duplicated, stuck, time) proven from the
database: every job succeeded, none is stuck running, and a job ran more than once
only if the attempt history records the earlier attempt as killed. The exit status
is non-zero if any scenario lost, duplicated or stranded a job.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: python bench/chaos.py
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import cluster, ledger
from bench.cluster import Process, StatusWatch, WebNode, start_worker, wait_for

WORKER_ARGS = ("--concurrency", "2", "--prefetch", "2")


def _stop_all(processes: list[Process]) -> list[str]:
    """Stop every process; the names of those that had already died on their own."""
    died = [f"{p.name} (pid {p.pid}) exited with {p.proc.returncode}" for p in processes if not p.alive()]
    for process in processes:
        process.stop()
    return died


def _drain(url: str, timeout: float, step: Callable[[], None] | None = None) -> None:
    """Wait until no job is left unfinished, calling ``step`` between looks."""
    deadline = time.monotonic() + timeout
    while ledger.unfinished(url) and time.monotonic() < deadline:
        if step:
            step()
        time.sleep(0.2)


def _ws(node_url: str) -> str:
    return node_url.replace("http", "ws", 1)


# --- 1. SIGKILL a random worker every 2 s -------------------------------------------


def kill_workers(
    url: str, logs: Path, jobs: int = 20_000, workers: int = 4, every: float = 2.0, timeout: float = 900
) -> ledger.Summary:
    """4 workers drain ``jobs`` while a random one is SIGKILLed every ``every`` s and restarted."""
    ledger.reset_runs(url)
    cluster.enqueue_marks(url, jobs, sleep=0.002)
    began = time.monotonic()
    running = [start_worker(url, logs, *WORKER_ARGS) for _ in range(workers)]
    kills = 0
    next_kill = began + every

    def maybe_kill() -> None:
        nonlocal kills, next_kill
        if time.monotonic() < next_kill:
            return
        victim = cluster.pick(running)
        victim.kill()
        kills += 1
        running.remove(victim)
        running.append(start_worker(url, logs, *WORKER_ARGS))
        next_kill += every

    try:
        _drain(url, timeout, maybe_kill)
        seconds = time.monotonic() - began
    finally:
        died = _stop_all(running)
    summary = ledger.audit(url, "1 sigkill-workers", jobs, seconds)
    summary.notes["kills"] = kills
    summary.problems += [f"worker died unasked: {name}" for name in died]
    return summary


# --- 2. PostgreSQL restarts mid-drain -----------------------------------------------


def restart_postgres(logs: Path, jobs: int = 5_000, workers: int = 2, down: float = 3.0) -> ledger.Summary:
    """Restart a private PostgreSQL (immediate stop, like a crash) once a quarter of the jobs
    are done; the workers and a web node, with a live socket open, must carry on alone."""
    # In the system's temporary folder: the postgres user must be able to reach it.
    server = cluster.PrivatePostgres(Path(tempfile.mkdtemp(prefix="taskweb-chaos-pg-")))
    server.init()
    server.start()
    processes: list[Process] = []
    watch: StatusWatch | None = None
    try:
        url = server.create_database("taskweb_chaos")
        cluster.manage(url, "migrate", "--noinput")
        ledger.reset_runs(url)
        user = cluster.make_staff(url)
        ids = cluster.enqueue_marks(url, jobs, sleep=0.003)
        web = WebNode(url, logs)
        processes.append(web)
        watched = ids[-100:]  # claimed last: they finish after the restart
        watch = StatusWatch(_ws(web.url), cluster.log_in(web.url, *user), web.url, watched)
        began = time.monotonic()
        processes += [start_worker(url, logs, *WORKER_ARGS) for _ in range(workers)]
        wait_for(lambda: ledger.unfinished(url) <= jobs * 3 // 4, 300, "a quarter of the jobs done")
        done_before = jobs - ledger.unfinished(url)
        server.stop("immediate")
        time.sleep(down / 2)
        health_down = web.health()
        time.sleep(down / 2)
        server.start()
        _drain(url, 600)
        seconds = time.monotonic() - began
        healthy = _eventually(lambda: web.health() == 200, 60)
        on_socket = _eventually(lambda: watch.showing("succeeded") >= set(watched), 60)
        summary = ledger.audit(url, "2 postgres-restart", jobs, seconds)
        summary.notes.update(done_before_restart=done_before, health_while_down=health_down)
        if not healthy:
            summary.problems.append(f"the web node's /health did not return to 200 (now {web.health()})")
        if not on_socket:
            missing = sorted(set(watched) - watch.showing("succeeded"))
            summary.problems.append(f"the socket opened before the restart missed {len(missing)} jobs")
        summary.problems += [f"died unasked: {name}" for name in _stop_all(processes)]
        return summary
    finally:
        if watch is not None:
            watch.close()
        _stop_all(processes)
        server.remove()


def _eventually(condition: Callable[[], bool], timeout: float) -> bool:
    try:
        return bool(wait_for(condition, timeout, "condition", interval=0.25))
    except TimeoutError:
        return False


# --- 3. two web nodes, one Redis ----------------------------------------------------


def two_web_nodes(url: str, logs: Path, jobs: int = 200, redis_url: str | None = None) -> ledger.Summary:
    """Sockets on two daphne nodes each see every job a worker finishes.

    Each node's poller reads the changes from the database and pushes them to its own
    sockets, so a channel layer (``redis_url``: channels-redis, as a site behind a load
    balancer is configured) changes nothing: every finished job must show on both
    nodes' sockets either way.
    """
    ledger.reset_runs(url)
    user = cluster.make_staff(url)
    ids = cluster.enqueue_marks(url, jobs)
    env = {"REDIS_URL": redis_url} if redis_url else {}
    nodes = [WebNode(url, logs, **env) for _ in range(2)]
    watches: list[StatusWatch] = []
    worker: Process | None = None
    try:
        cookie = cluster.log_in(nodes[0].url, *user)  # one session, valid on every node
        watches = [StatusWatch(_ws(node.url), cookie, node.url, ids) for node in nodes]
        began = time.monotonic()
        worker = start_worker(url, logs, *WORKER_ARGS)
        _drain(url, 300)
        for watch in watches:
            _eventually(lambda watch=watch: watch.showing("succeeded") >= set(ids), 30)
        seconds = time.monotonic() - began
    finally:
        for watch in watches:
            watch.close()
        died = _stop_all([*nodes, *([worker] if worker else [])])
    layer = "redis" if redis_url else "in-memory"
    summary = ledger.audit(url, f"3 two-web-nodes ({layer})", jobs, seconds)
    for number, watch in enumerate(watches, 1):
        missing = set(ids) - watch.showing("succeeded")
        summary.notes[f"node{number}_shown"] = len(ids) - len(missing)
        if missing:
            summary.lost += len(missing)
            summary.problems.append(f"node {number}'s socket never showed {len(missing)} finished jobs")
    summary.problems += [f"died unasked: {name}" for name in died]
    return summary


# --- 4. SIGSTOP past the lease, then SIGCONT ----------------------------------------


def pause_worker(url: str, logs: Path, jobs: int = 4, first_sleep: float = 2.0) -> ledger.Summary:
    """A frozen worker loses its jobs to another; thawed, its late outcomes change nothing.

    Only the worker's main process is stopped: its children finish attempt 1 and
    report into the pipe, so when it resumes it holds real, late results to write.
    """
    ledger.reset_runs(url)
    ids = cluster.enqueue_marks(url, jobs, first_sleep=first_sleep)
    began = time.monotonic()
    frozen = start_worker(url, logs, "--concurrency", str(jobs), "--prefetch", "0")
    other: Process | None = None
    problems: list[str] = []
    try:
        wait_for(lambda: _runs(url) >= jobs, 60, "every job's first attempt started")
        frozen.signal(signal.SIGSTOP)
        other = start_worker(url, logs, *WORKER_ARGS)
        _drain(url, 120)
        time.sleep(first_sleep)  # the frozen worker's children are surely done by now
        before = _job_rows(url, ids)
        beat = _last_heartbeat(url, frozen.pid)
        frozen.signal(signal.SIGCONT)
        # Outcomes are flushed before the heartbeat, so a newer heartbeat means the
        # thawed worker has already tried to write its late results.
        wait_for(lambda: _last_heartbeat(url, frozen.pid) > beat, 60, "the thawed worker's next heartbeat")
        after = _job_rows(url, ids)
        seconds = time.monotonic() - began
        if after != before:
            problems.append(f"late outcomes changed finished jobs: {before} -> {after}")
        problems += _check_pause_history(url, ids, frozen.pid)
    finally:
        died = _stop_all([frozen, *([other] if other else [])])
    summary = ledger.audit(url, "4 sigstop-past-lease", jobs, seconds)
    summary.problems += problems + [f"died unasked: {name}" for name in died]
    return summary


def _runs(url: str) -> int:
    with ledger.Db(url) as db:
        return db.value(f"SELECT count(*) FROM {ledger.RUNS_TABLE}")


def _job_rows(url: str, ids: list[int]) -> list[tuple]:
    with ledger.Db(url) as db:
        return db.rows(
            "SELECT id, status, attempts, worker_id, result, finished_at FROM queues_job "
            f"WHERE id IN ({','.join(map(str, ids))}) ORDER BY id"
        )


def _last_heartbeat(url: str, pid: int) -> Any:
    with ledger.Db(url) as db:
        return db.value(f"SELECT max(last_heartbeat) FROM queues_worker WHERE pid = {int(pid)}")


def _check_pause_history(url: str, ids: list[int], frozen_pid: int) -> list[str]:
    """Attempt 1 of each job lost by the frozen worker, attempt 2 succeeded by the other."""
    with ledger.Db(url) as db:
        frozen_id = db.value(f"SELECT id FROM queues_worker WHERE pid = {int(frozen_pid)}")
        history = db.rows(
            "SELECT job_id, number, outcome, worker_id FROM queues_attempt "
            f"WHERE job_id IN ({','.join(map(str, ids))}) ORDER BY job_id, number"
        )
        results = dict(db.rows(f"SELECT id, result FROM queues_job WHERE id IN ({','.join(map(str, ids))})"))
        done = db.value(f"SELECT jobs_done FROM queues_worker WHERE pid = {int(frozen_pid)}")
    problems = []
    for job_id in ids:
        mine = [
            (number, outcome, worker == frozen_id) for j, number, outcome, worker in history if j == job_id
        ]
        if mine != [(1, "lost", True), (2, "succeeded", False)]:
            problems.append(f"job {job_id}: attempt history {mine} (number, outcome, by the frozen worker)")
        result = results[job_id]
        if result not in ("attempt 2", '"attempt 2"'):  # JSON decoded by psycopg, text in SQLite
            problems.append(f"job {job_id}: result {result!r} is not the newer attempt's")
    if done:
        problems.append(f"the frozen worker counts {done} jobs done; its late outcomes were applied")
    return problems


# --- 5. SQLite: two workers and the web process on one file -------------------------


def sqlite_one_file(url: str, logs: Path, jobs: int = 5_000, api_jobs: int = 200) -> ledger.Summary:
    """Two workers and daphne share one SQLite file while users enqueue and read through
    the web process; no user ever gets an error, and nothing is lost."""
    ledger.reset_runs(url)
    user = cluster.make_staff(url)
    create = ("token", "create", "chaos", "--user", user[0], "--scope", "operate")
    token = cluster.manage(url, "taskctl", *create).split()[0]
    cluster.enqueue_marks(url, jobs - api_jobs)
    web = WebNode(url, logs)
    traffic = UserTraffic(web.url, token, cluster.log_in(web.url, *user), api_jobs)
    began = time.monotonic()
    workers = [start_worker(url, logs, *WORKER_ARGS) for _ in range(2)]
    try:
        traffic.start()
        wait_for(lambda: traffic.posted >= api_jobs or not traffic.is_alive(), 600, "the API enqueues")
        _drain(url, 600)
        seconds = time.monotonic() - began
    finally:
        traffic.stop()
        died = _stop_all([web, *workers])
    summary = ledger.audit(url, "5 sqlite-one-file", jobs, seconds)
    retried = sum(worker.output().count("database is locked") for worker in workers)
    summary.notes.update(
        requests=traffic.requests, user_errors=len(traffic.errors), worker_lock_retries=retried
    )
    summary.problems += traffic.errors[:10] + [f"died unasked: {name}" for name in died]
    return summary


class UserTraffic(threading.Thread):
    """What users do meanwhile: enqueue through the REST API, read stats, jobs, the console."""

    def __init__(self, base_url: str, token: str, cookie: str, enqueues: int) -> None:
        super().__init__(daemon=True)
        self.base = base_url
        self.token = token
        self.cookie = cookie
        self.enqueues = enqueues
        self.requests = 0
        self.posted = 0
        self.errors: list[str] = []
        self._halt = threading.Event()

    def run(self) -> None:
        body = json.dumps({"task": "tests.tasks.chaos_mark", "kwargs": {}}).encode()
        reads = ["/api/stats", "/api/jobs?status=running", "/health", "/"]
        number = 0
        while not self._halt.is_set():  # reads go on until the drain is over
            if number < self.enqueues:
                self._call("POST", "/api/jobs", body, expect=201)
                self.posted += 1
            self._call("GET", reads[number % len(reads)])
            number += 1

    def _call(self, method: str, path: str, body: bytes | None = None, expect: int = 200) -> None:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        if path == "/":
            headers = {"Cookie": self.cookie}
        request = urllib.request.Request(f"{self.base}{path}", data=body, method=method, headers=headers)
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, text = response.status, response.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            status, text = exc.code, exc.read().decode(errors="replace")
        except OSError as exc:
            status, text = 0, str(exc)
        if status != expect or "database is locked" in text:
            self.errors.append(f"{method} {path} -> {status}: {text[:200]}")

    def stop(self) -> None:
        self._halt.set()
        self.join(60)


# --- running the suite --------------------------------------------------------------


def fresh_postgres(server_url: str, name: str) -> str:
    """An empty, migrated database ``name`` on the PostgreSQL server of ``server_url``."""
    import psycopg

    base = server_url.rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{base}/{name}"
    cluster.manage(url, "migrate", "--noinput")
    return url


def fresh_sqlite(path: Path) -> str:
    for leftover in path.parent.glob(path.name + "*"):
        leftover.unlink()
    url = f"sqlite:///{path}"
    cluster.manage(url, "migrate", "--noinput")
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="1,2,3,4,5", help="Comma-separated scenario numbers.")
    parser.add_argument(
        "--postgres",
        default="postgres://postgres@127.0.0.1:5432/taskweb_chaos",
        help="PostgreSQL server for scenarios 1, 3, 4: databases taskweb_chaos_N are made there.",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/7", help="Redis for scenario 3.")
    parser.add_argument("--jobs", type=int, default=20_000, help="Jobs of scenario 1.")
    parser.add_argument("--restart-jobs", type=int, default=5_000, help="Jobs of scenario 2.")
    parser.add_argument("--web-jobs", type=int, default=200, help="Jobs of scenario 3.")
    parser.add_argument("--sqlite-jobs", type=int, default=5_000, help="Jobs of scenario 5.")
    parser.add_argument("--work", type=Path, default=None, help="Folder for logs and databases.")
    args = parser.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="taskweb-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    wanted = {int(part) for part in args.only.split(",") if part.strip()}
    runs: dict[int, Callable[[], ledger.Summary]] = {
        1: lambda: kill_workers(fresh_postgres(args.postgres, "taskweb_chaos_1"), logs, args.jobs),
        2: lambda: restart_postgres(logs, args.restart_jobs),
        3: lambda: two_web_nodes(
            fresh_postgres(args.postgres, "taskweb_chaos_3"), logs, args.web_jobs, redis_url=args.redis
        ),
        4: lambda: pause_worker(fresh_postgres(args.postgres, "taskweb_chaos_4"), logs),
        5: lambda: sqlite_one_file(fresh_sqlite(work / "chaos.sqlite3"), logs, args.sqlite_jobs),
    }
    failed = False
    for number in sorted(wanted):
        summary = runs[number]()
        print(summary.explain() if not summary.ok else summary.line(), flush=True)
        failed |= not summary.ok
    print(f"logs: {logs}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
