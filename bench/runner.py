"""Runs W1-W4 for one system on one store, each workload on a fresh store."""

from __future__ import annotations

import json
import os
import select
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procs, stores
from bench.peers.base import Peer, Target
from bench.venvs import ROOT

BENCH_VAR = ROOT / "var" / "bench"
WORKER_STOP_GRACE = 10.0


class WorkloadError(Exception):
    """A workload that did not finish; reported in its cell instead of a figure."""


@dataclass(frozen=True)
class Sizes:
    single: int = 5_000
    bulk: int = 50_000
    drain: int = 10_000
    latency: int = 200
    gap_ms: float = 25.0

    @classmethod
    def quick(cls) -> Sizes:
        return cls(single=500, bulk=5_000, drain=1_000, latency=40)


@dataclass
class Bench:
    peer: Peer
    store: str
    python: Path
    sizes: Sizes

    def __post_init__(self) -> None:
        self.key = self.peer.name.replace("-", "_")
        self.log = BENCH_VAR / "logs" / f"{self.peer.name}-{self.store}.log"
        self.stamps = BENCH_VAR / "stamps" / f"{self.peer.name}-{self.store}"
        self.log.parent.mkdir(parents=True, exist_ok=True)

    # Stores -------------------------------------------------------------------------
    def sqlite_path(self, template: bool = False) -> Path:
        return BENCH_VAR / "db" / f"{self.key}{'_template' if template else ''}.sqlite3"

    def pg_name(self, template: bool = False) -> str:
        return f"{stores.PREFIX}{self.key}{'_template' if template else ''}"

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

    def drive(self, target: Target, action: str, n: int, timeout: float) -> subprocess.Popen:
        argv = [
            str(self.python),
            "-m",
            "bench.drive",
            self.peer.module,
            action,
            "--n",
            str(n),
            "--gap-ms",
            str(self.sizes.gap_ms),
            "--stamps",
            str(self.stamps),
            "--timeout",
            str(timeout),
        ]
        return procs.spawn(argv, self.env(target), ROOT, self.log)

    def ask(self, target: Target, action: str, n: int, timeout: float) -> dict[str, Any]:
        driver = self.drive(target, action, n, timeout)
        try:
            return self.check(read_message(driver, timeout + 30))
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

    def w3_drain(self) -> float:
        n = self.sizes.drain
        target = self.fresh()
        self.ask(target, "seed", n, timeout=600)
        waiter = self.drive(target, "drain", n, timeout=600)
        workers: list[subprocess.Popen] = []
        try:
            self.check(read_message(waiter, 120))
            started = time.time()
            workers = self.start_workers(target)
            done_at = self.check(read_message(waiter, 630))["done_at"]
        finally:
            self.stop_workers(workers)
            procs.stop(waiter)
        return n / (done_at - started)

    def w4_latency(self) -> tuple[float, float]:
        target = self.fresh()
        workers = self.start_workers(target)
        try:
            answer = self.ask(target, "latency", self.sizes.latency, timeout=180)
        finally:
            self.stop_workers(workers)
        return answer["p50_ms"], answer["p99_ms"]

    def run_once(self) -> dict[str, float | str | None]:
        """One figure (or the reason there is none) per metric."""
        results: dict[str, float | str | None] = {}
        steps = [
            ("W1", lambda: {"W1": self.w1_single()}),
            ("W2", lambda: {"W2": self.w2_bulk()}),
            ("W3", lambda: {"W3": self.w3_drain()}),
            ("W4", lambda: dict(zip(("W4p50", "W4p99"), self.w4_latency(), strict=True))),
        ]
        for name, step in steps:
            try:
                results.update(step())
            except Exception as exc:  # one broken cell must not cost the whole run
                results.update({key: f"error: {exc}" for key in METRICS if key.startswith(name)})
        return results


METRICS = {
    "W1": "W1 enqueue one by one (jobs/s)",
    "W2": "W2 bulk enqueue (jobs/s)",
    "W3": "W3 drain from cold (jobs/s)",
    "W4p50": "W4 enqueue->start p50 (ms)",
    "W4p99": "W4 enqueue->start p99 (ms)",
}


def median(values: list[float | str | None]) -> float | str | None:
    """Median of the runs that produced a figure; else the first reason given."""
    figures = [v for v in values if isinstance(v, (int, float))]
    if figures:
        return statistics.median(figures)
    return next((v for v in values if v is not None), None)


def read_message(proc: subprocess.Popen, timeout: float) -> dict[str, Any]:
    """The next JSON line the driver prints, or WorkloadError after ``timeout``."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    buffer = getattr(proc, "_bench_buffer", b"")
    deadline = time.monotonic() + timeout
    while b"\n" not in buffer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise WorkloadError(f"no answer within {timeout:.0f} s")
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise WorkloadError(f"driver exited with code {proc.wait()}; see var/bench/logs/")
            buffer += chunk
    line, _, rest = buffer.partition(b"\n")
    proc._bench_buffer = rest  # type: ignore[attr-defined]
    return json.loads(line)
