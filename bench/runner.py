"""Runs W1-W4 and W6 for one system on one store, each workload on a fresh store."""

from __future__ import annotations

import functools
import json
import os
import select
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import procs, rows, stores
from bench.memory import PeakMemory
from bench.peers.base import Peer, Target
from bench.peers.taskweb import PEER as TASKWEB
from bench.venvs import ROOT

BENCH_VAR = ROOT / "var" / "bench"
WORKER_STOP_GRACE = 10.0
TASKWEB_SLOTS = TASKWEB.slots or 2


class WorkloadError(Exception):
    """A workload that did not finish; reported in its cell instead of a figure."""


@dataclass(frozen=True)
class Sizes:
    single: int = 5_000
    bulk: int = 50_000
    drains: tuple[int, ...] = (5_000, 100_000)
    latency: int = 200
    gap_ms: float = 25.0
    quick_jobs: int = 150  # W6: quick jobs, one every fair_gap_ms (3 s of them)
    fair_gap_ms: float = 20.0
    hold: float = 5.0  # W6: seconds each long job runs, longer than the stream of quick jobs

    @classmethod
    def quick(cls) -> Sizes:
        return cls(single=500, bulk=5_000, drains=(500, 2_000), latency=40, quick_jobs=50, hold=3.0)


@dataclass
class Bench:
    peer: Peer
    store: str
    python: Path
    sizes: Sizes
    notes: list[str] = field(default_factory=list)  # what a figure alone would not tell

    def __post_init__(self) -> None:
        self.key = self.peer.name.replace("-", "_")
        self.log = BENCH_VAR / "logs" / f"{self.peer.name}-{self.store}.log"
        self.stamps = BENCH_VAR / "stamps" / f"{self.peer.name}-{self.store}"
        self.log.parent.mkdir(parents=True, exist_ok=True)

    # Stores -------------------------------------------------------------------------
    def sqlite_path(self, template: bool = False) -> Path:
        return BENCH_VAR / "db" / f"{self.key}{'_template' if template else ''}.sqlite3"

    def pg_name(self, template: bool = False) -> str:
        return f"{stores.PREFIX}{stores.TAG}{self.key}{'_template' if template else ''}"

    def target(self, template: bool = False) -> Target:
        if self.store == "sqlite":
            url = stores.sqlite_url(self.sqlite_path(template))
        elif self.store == "postgres":
            url = stores.postgres_url(self.pg_name(template))
        else:
            url = f"{stores.REDIS_SERVER}/{self.peer.redis_db}"
        return Target(store=self.store, url=url, python=str(self.python), bin_dir=str(self.python.parent))

    def prepare(self) -> None:
        """Build the schema once in a template store."""
        if self.store == "sqlite":
            stores.reset_sqlite(self.sqlite_path(template=True))
        elif self.store == "postgres":
            stores.reset_postgres(self.pg_name(template=True))
        target = self.target(template=True)
        for argv in self.peer.setup(target):
            self.run(argv, target, timeout=300)

    def fresh(self) -> Target:
        if self.store == "sqlite":
            stores.clone_sqlite(self.sqlite_path(template=True), self.sqlite_path())
        elif self.store == "postgres":
            stores.reset_postgres(self.pg_name(), template=self.pg_name(template=True))
        else:
            stores.flush_redis(self.target().url)
        return self.target()

    def cleanup(self) -> None:
        if self.store == "postgres":
            stores.drop_postgres([self.pg_name(), self.pg_name(template=True)])
        elif self.store == "redis":
            stores.flush_redis(self.target().url)

    # Processes ----------------------------------------------------------------------
    def env(self, target: Target) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "VIRTUAL_ENV", "PYTHONPATH"}}
        env.update(
            PATH=f"{target.bin_dir}:{env.get('PATH', '')}",
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
            DATABASE_URL=target.url,
            BENCH_URL=target.url,
            TASKWEB_VAR_DIR=str(BENCH_VAR / "taskweb"),
        )
        env.update(self.peer.env)
        return env

    def run(self, argv: list[str], target: Target, timeout: float) -> None:
        with self.log.open("ab") as out:
            try:
                subprocess.run(
                    argv,
                    env=self.env(target),
                    cwd=ROOT,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    check=True,
                    timeout=timeout,
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                raise WorkloadError(f"{' '.join(argv)} failed ({exc}); see {self.log}") from exc

    def drive(
        self, target: Target, action: str, n: int, timeout: float, *extra: str, gap_ms: float | None = None
    ) -> subprocess.Popen:
        argv = [
            str(self.python),
            "-m",
            "bench.drive",
            self.peer.module,
            action,
            "--n",
            str(n),
            "--gap-ms",
            str(self.sizes.gap_ms if gap_ms is None else gap_ms),
            "--stamps",
            str(self.stamps),
            "--timeout",
            str(timeout),
            *extra,
        ]
        return procs.spawn(argv, self.env(target), ROOT, self.log)

    def ask(
        self,
        target: Target,
        action: str,
        n: int,
        timeout: float,
        *extra: str,
        gap_ms: float | None = None,
        workers: list[subprocess.Popen] | None = None,
    ) -> dict[str, Any]:
        driver = self.drive(target, action, n, timeout, *extra, gap_ms=gap_ms)
        try:
            return self.check(read_message(driver, timeout + 30, workers))
        finally:
            procs.stop(driver)

    def check(self, message: dict[str, Any]) -> dict[str, Any]:
        if "timeout" in message:
            raise WorkloadError(message["timeout"])
        return message

    def start_workers(self, target: Target) -> list[subprocess.Popen]:
        return [procs.spawn(argv, self.env(target), ROOT, self.log) for argv in self.peer.workers(target)]

    def stop_workers(self, workers: list[subprocess.Popen]) -> None:
        for worker in workers:
            procs.stop(worker, grace=WORKER_STOP_GRACE)

    # Workloads ----------------------------------------------------------------------
    def w1_single(self) -> float:
        n = self.sizes.single
        return n / self.ask(self.fresh(), "single", n, timeout=600)["seconds"]

    def w2_bulk(self) -> float | None:
        n = self.sizes.bulk
        answer = self.ask(self.fresh(), "bulk", n, timeout=600)
        return None if "unsupported" in answer else n / answer["seconds"]

    @property
    def analysable(self) -> bool:
        """Whether the store has a planner that ANALYZE feeds (not Redis)."""
        return self.store in ("sqlite", "postgres")

    def w3_drain(self, n: int, analysed: bool, memory: bool) -> dict[str, float | None]:
        """Seed ``n`` jobs, ANALYZE or not, start the worker command from cold, time the drain.

        The figures go under ``rows.drain_key``; ``memory`` adds the worker tree's peaks.
        """
        key = rows.drain_key(n, analysed)
        if analysed and not self.analysable:
            return {key: None}
        target = self.fresh()
        self.ask(target, "seed", n, timeout=600 + n / 200)
        if analysed:
            stores.analyze(target.url)
        if self.analysable:
            self.expect_statistics(target, analysed, f"W3 {n:,} before the worker started")
        timeout = 600 + n / 100
        waiter = self.drive(target, "drain", n, timeout=timeout)
        workers: list[subprocess.Popen] = []
        peaks = None
        try:
            self.check(read_message(waiter, 120))
            started = time.time()
            workers = self.start_workers(target)
            if memory:
                peaks = PeakMemory([worker.pid for worker in workers])
            done_at = self.check(read_message(waiter, timeout + 30, workers))["done_at"]
        finally:
            figures = peaks.stop() if peaks else {}
            self.stop_workers(workers)
            procs.stop(waiter)
        if self.analysable and not analysed:
            self.expect_statistics(target, False, f"W3 {n:,} after the drain (autovacuum?)")
        return {key: n / (done_at - started), **figures}

    def expect_statistics(self, target: Target, analysed: bool, when: str) -> None:
        """Note a W3 variant that is not what its row says (say, autovacuum analysed it)."""
        known = stores.tables_with_statistics(target.url)
        if bool(known) != analysed:
            state = f"{known} table(s) with planner statistics" if known else "no planner statistics"
            self.notes.append(f"{self.peer.name} on {self.store}: {when}: {state}")

    def w4_latency(self) -> dict[str, float]:
        target = self.fresh()
        workers = self.start_workers(target)
        try:
            answer = self.ask(target, "latency", self.sizes.latency, timeout=180, workers=workers)
        finally:
            self.stop_workers(workers)
        return {"W4p50": answer["p50_ms"], "W4p99": answer["p99_ms"]}

    def long_jobs(self) -> int:
        """All slots but one; a system with no cap gets as many long jobs as Taskweb's worker."""
        return (self.peer.slots or TASKWEB_SLOTS) - 1

    def w6_fairness(self) -> dict[str, float]:
        sizes = self.sizes
        target = self.fresh()
        workers = self.start_workers(target)
        try:
            answer = self.ask(
                target,
                "fairness",
                sizes.quick_jobs,
                180,
                "--long",
                str(self.long_jobs()),
                "--hold",
                str(sizes.hold),
                gap_ms=sizes.fair_gap_ms,
                workers=workers,
            )
        finally:
            self.stop_workers(workers)
        if not answer["overlap"]:
            self.notes.append(
                f"{self.peer.name} on {self.store}: W6 long jobs ended before the last quick job "
                "was enqueued; some quick jobs met free slots"
            )
        return {"W6p50": answer["p50_ms"], "W6p99": answer["p99_ms"], "W6max": answer["max_ms"]}

    def run_once(self) -> dict[str, float | str | None]:
        """One figure (or the reason there is none) per measured row."""
        results: dict[str, float | str | None] = {}
        largest = max(self.sizes.drains)
        steps: list[tuple[list[str], Callable[[], dict[str, Any]]]] = [
            (["W1"], lambda: {"W1": self.w1_single()}),
            (["W2"], lambda: {"W2": self.w2_bulk()}),
        ]
        for n in self.sizes.drains:
            for analysed in (False, True):
                memory = n == largest and not analysed
                keys = [rows.drain_key(n, analysed), *(["RSS", "PSS"] if memory else [])]
                steps.append((keys, functools.partial(self.w3_drain, n, analysed, memory)))
        steps += [(["W4p50", "W4p99"], self.w4_latency), (["W6p50", "W6p99", "W6max"], self.w6_fairness)]
        for keys, step in steps:
            try:
                results.update(step())
            except Exception as exc:  # one broken cell must not cost the whole run
                results.update({key: f"error: {exc}" for key in keys})
        return results


def median(values: list[float | str | None]) -> float | str | None:
    """Median of the runs that produced a figure; else the first reason given."""
    figures = [v for v in values if isinstance(v, (int, float))]
    if figures:
        return statistics.median(figures)
    return next((v for v in values if v is not None), None)


def read_message(
    proc: subprocess.Popen, timeout: float, workers: list[subprocess.Popen] | None = None
) -> dict[str, Any]:
    """The next JSON line the driver prints, or WorkloadError after ``timeout``, or as soon
    as every one of ``workers`` has exited (a worker that cannot start is not waited for)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buffer = getattr(proc, "_bench_buffer", b"")
    deadline = time.monotonic() + timeout
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WorkloadError(f"no answer within {timeout:.0f} s")
        if workers and all(worker.poll() is not None for worker in workers):
            codes = ", ".join(str(worker.returncode) for worker in workers)
            raise WorkloadError(f"the worker command exited ({codes}); see var/bench/logs/")
        ready, _, _ = select.select([fd], [], [], min(remaining, 1.0))
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise WorkloadError(f"driver exited with code {proc.wait()}; see var/bench/logs/")
            buffer += chunk
    line, _, rest = buffer.partition(b"\n")
    proc._bench_buffer = rest  # type: ignore[attr-defined]
    return json.loads(line)
