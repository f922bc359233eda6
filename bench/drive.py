"""Producer side of one workload, run inside the system's own virtualenv.

    python -m bench.drive MODULE ACTION [--n N] [--gap-ms MS] [--stamps DIR] [--timeout S]
                                        [--long N] [--hold S]

Prints one JSON object per line on stdout; the orchestrator reads them. ``drain``
prints ``{"ready": true}`` once connected, so the orchestrator starts the worker only
when the poller is already watching.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench import stamps
from bench.peers.base import Client

POLL = 0.02  # seconds: the finest completion check, so a drain's end is seen within 20 ms
MAX_POLL = 0.5  # the coarsest one, early in a long drain
IDLE = 1.0  # seconds a warmed-up worker is left idle before the measured jobs arrive


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def single(client: Client, n: int) -> dict[str, Any]:
    started = time.perf_counter()
    for _ in range(n):
        client.enqueue_one()
    return {"seconds": time.perf_counter() - started}


def bulk(client: Client, n: int) -> dict[str, Any]:
    if client.enqueue_bulk is None:
        return {"unsupported": "no bulk enqueue API"}
    started = time.perf_counter()
    client.enqueue_bulk(n)
    return {"seconds": time.perf_counter() - started}


def next_poll(done: int, n: int, elapsed: float) -> float:
    """Seconds until the next completion check of a drain.

    Counting finished jobs costs the database more as they pile up (100,000 rows), and
    that cost lands on the worker being measured: so look rarely while most of the drain
    is still ahead (an eighth of the time the rate so far says is left) and every 20 ms
    near its end, which keeps the end as sharp as constant polling at a fraction of the
    queries. Before the first job finishes (the worker is still starting), back off too.
    """
    if done <= 0 or elapsed <= 0:
        guess = elapsed / 10
    else:
        guess = (n - done) * elapsed / done / 8
    return min(MAX_POLL, max(POLL, guess))


def drain(client: Client, n: int, timeout: float) -> dict[str, Any]:
    emit({"ready": True})
    began = time.monotonic()
    deadline = began + timeout
    while (done := client.finished()) < n:
        now = time.monotonic()
        if now > deadline:
            return {"timeout": f"{done} of {n} finished after {timeout:.0f} s"}
        time.sleep(next_poll(done, n, now - began))
    return {"done_at": time.time()}


def wait_for_lines(path: Path, n: int, deadline: float) -> bool:
    while len(stamps.latencies_ms(path)) < n:
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL)
    return True


def warm_up(client: Client, directory: Path, deadline: float) -> bool:
    """Run a few jobs, then leave the worker idle, waiting for work as in production."""
    warm = directory / "warmup.txt"
    for _ in range(5):
        client.enqueue_stamp(str(warm), time.time())
    if not wait_for_lines(warm, 5, deadline):
        return False
    time.sleep(IDLE)
    return True


def stream(client: Client, path: Path, n: int, gap: float) -> None:
    """Enqueue ``n`` stamping jobs ``gap`` seconds apart, on a fixed schedule."""
    start = time.monotonic()
    for i in range(n):
        time.sleep(max(0.0, start + i * gap - time.monotonic()))
        client.enqueue_stamp(str(path), time.time())


def fresh_files(directory: Path, *names: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / name for name in ("warmup.txt", *names)]
    for path in paths:
        path.unlink(missing_ok=True)
    return paths[1:]


def latency(client: Client, n: int, gap: float, directory: Path, timeout: float) -> dict[str, Any]:
    """W4: warm the worker, let it go idle, then enqueue ``n`` jobs ``gap`` apart."""
    (measured,) = fresh_files(directory, "latency.txt")
    deadline = time.monotonic() + timeout
    if not warm_up(client, directory, deadline):
        return {"timeout": "the worker never ran the warm-up jobs"}
    stream(client, measured, n, gap)
    if not wait_for_lines(measured, n, deadline):
        return {"timeout": f"{len(stamps.latencies_ms(measured))} of {n} jobs started"}
    return stamps.summary(stamps.latencies_ms(measured))


def fairness(
    client: Client, n: int, gap: float, directory: Path, timeout: float, long: int, hold: float
) -> dict[str, Any]:
    """W6: ``long`` jobs of ``hold`` seconds fill all slots but one of a warm worker; once all
    have started, ``n`` quick jobs arrive ``gap`` apart. Their enqueue -> start latency is
    the answer; ``overlap`` says whether the long jobs still ran when the last one arrived."""
    long_path, quick = fresh_files(directory, "long.txt", "quick.txt")
    deadline = time.monotonic() + timeout
    if not warm_up(client, directory, deadline):
        return {"timeout": "the worker never ran the warm-up jobs"}
    for _ in range(long):
        client.enqueue_long(str(long_path), time.time(), hold)
    if not wait_for_lines(long_path, long, deadline):
        return {"timeout": f"{len(stamps.latencies_ms(long_path))} of {long} long jobs started"}
    first_long_ends = min(started for _, started in stamps.pairs(long_path)) + hold
    stream(client, quick, n, gap)
    last_enqueued = time.time()
    if not wait_for_lines(quick, n, deadline):
        return {"timeout": f"{len(stamps.latencies_ms(quick))} of {n} quick jobs started"}
    return {**stamps.summary(stamps.latencies_ms(quick)), "overlap": last_enqueued < first_long_ends}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("module")
    parser.add_argument("action", choices=["single", "bulk", "seed", "drain", "latency", "fairness"])
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--gap-ms", type=float, default=25.0)
    parser.add_argument("--stamps", type=Path, default=Path("var/bench/stamps"))
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--long", type=int, default=1, help="fairness: long jobs to start first")
    parser.add_argument("--hold", type=float, default=5.0, help="fairness: seconds each long job runs")
    args = parser.parse_args(argv)
    client: Client = importlib.import_module(args.module).client()
    if args.action == "single":
        emit(single(client, args.n))
    elif args.action == "bulk":
        emit(bulk(client, args.n))
    elif args.action == "seed":
        client.seed(args.n)
        emit({"seeded": args.n})
    elif args.action == "drain":
        emit(drain(client, args.n, args.timeout))
    elif args.action == "latency":
        emit(latency(client, args.n, args.gap_ms / 1000, args.stamps, args.timeout))
    else:
        emit(fairness(client, args.n, args.gap_ms / 1000, args.stamps, args.timeout, args.long, args.hold))


if __name__ == "__main__":
    main(sys.argv[1:])
