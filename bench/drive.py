"""Producer side of one workload, run inside the system's own virtualenv.

    python -m bench.drive MODULE ACTION [--n N] [--gap-ms MS] [--stamps DIR] [--timeout S]

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

POLL = 0.02  # seconds between completion checks: small next to any drain time measured


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


def drain(client: Client, n: int, timeout: float) -> dict[str, Any]:
    emit({"ready": True})
    deadline = time.monotonic() + timeout
    while (done := client.finished()) < n:
        if time.monotonic() > deadline:
            return {"timeout": f"{done} of {n} finished after {timeout:.0f} s"}
        time.sleep(POLL)
    return {"done_at": time.time()}


def wait_for_lines(path: Path, n: int, deadline: float) -> bool:
    while len(stamps.latencies_ms(path)) < n:
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL)
    return True


def latency(client: Client, n: int, gap: float, directory: Path, timeout: float) -> dict[str, Any]:
    """Warm the worker with a few jobs, let it go idle, then enqueue ``n`` jobs ``gap`` apart."""
    directory.mkdir(parents=True, exist_ok=True)
    warm, measured = directory / "warmup.txt", directory / "latency.txt"
    for path in (warm, measured):
        path.unlink(missing_ok=True)
    deadline = time.monotonic() + timeout
    for _ in range(5):
        client.enqueue_stamp(str(warm), time.time())
    if not wait_for_lines(warm, 5, deadline):
        return {"timeout": "the worker never ran the warm-up jobs"}
    time.sleep(1.0)  # idle: the worker is now waiting for work, as in production
    start = time.monotonic()
    for i in range(n):
        time.sleep(max(0.0, start + i * gap - time.monotonic()))
        client.enqueue_stamp(str(measured), time.time())
    if not wait_for_lines(measured, n, deadline):
        return {"timeout": f"{len(stamps.latencies_ms(measured))} of {n} jobs started"}
    values = stamps.latencies_ms(measured)
    return {"p50_ms": stamps.percentile(values, 50), "p99_ms": stamps.percentile(values, 99)}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("module")
    parser.add_argument("action", choices=["single", "bulk", "seed", "drain", "latency"])
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--gap-ms", type=float, default=25.0)
    parser.add_argument("--stamps", type=Path, default=Path("var/bench/stamps"))
    parser.add_argument("--timeout", type=float, default=300.0)
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
    else:
        emit(latency(client, args.n, args.gap_ms / 1000, args.stamps, args.timeout))


if __name__ == "__main__":
    main(sys.argv[1:])
