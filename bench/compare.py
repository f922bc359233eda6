"""Taskweb against other Python job queues, side by side on this machine.

    python -m bench.compare [--runs 3] [--db sqlite|postgres|both]
                            [--only taskweb|peers|NAME] [--quick] [--console]
                            [--drain-sizes 5000,100000]

W1 enqueues jobs one by one through each system's public API, W2 through its bulk API,
W3 drains already queued no-op jobs with the worker command started from cold, at each
size, once on tables never analysed and once after ANALYZE (the drop row compares the
smallest and largest size; the largest also gives the worker tree's peak memory). W4
measures enqueue -> task start for jobs enqueued 25 ms apart to an idle, warm worker.
W6 fills all of a warm worker's slots but one with long jobs, then measures enqueue ->
start of quick jobs enqueued 20 ms apart. Each peer is installed into its own
virtualenv under var/bench/venvs. Prints a table per database with Taskweb/peer
ratios, the exact worker commands, and writes var/bench/results.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import procs, report, rows, stores, venvs
from bench.peers.base import Peer
from bench.runner import TASKWEB_SLOTS, Bench, Sizes, median
from bench.venvs import ROOT

PEER_MODULES = ("taskweb", "dtdb", "celery_redis", "rq_redis", "procrastinate_pg", "pgqueuer_pg")
CONSOLE_BENCH = ROOT / "bench" / "console.py"
OUTPUT = ROOT / "var" / "bench" / "results.json"


def all_peers() -> list[Peer]:
    return [importlib.import_module(f"bench.peers.{name}").PEER for name in PEER_MODULES]


def parse(argv: list[str]) -> argparse.Namespace:
    names = [peer.name for peer in all_peers()]
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs", type=int, help="runs per workload; the median is shown (default 3, 1 with --quick)"
    )
    parser.add_argument("--only", choices=["taskweb", "peers", *names[1:]], help="measure only these systems")
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="small sizes and one run: a smoke test")
    parser.add_argument("--console", action="store_true", help="also run W5 (bench/console.py) if present")
    parser.add_argument(
        "--drain-sizes",
        type=drain_sizes,
        help="W3 sizes, comma-separated (default 5000,100000; 500,2000 with --quick)",
    )
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    return args


def drain_sizes(text: str) -> tuple[int, ...]:
    """``5000,100000`` -> (5000, 100000): distinct positive job counts, smallest first."""
    try:
        sizes = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of job counts") from None
    if not sizes or sizes[0] < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give one or more job counts, each at least 1")
    return tuple(sizes)


def chosen_sizes(args: argparse.Namespace) -> Sizes:
    sizes = Sizes.quick() if args.quick else Sizes()
    return dataclasses.replace(sizes, drains=args.drain_sizes) if args.drain_sizes else sizes


def chosen_peers(only: str | None) -> list[Peer]:
    peers = all_peers()
    if only == "taskweb":
        return peers[:1]
    if only == "peers":
        return peers[1:]
    return [p for p in peers if p.name == only] if only else peers


def chosen_stores(db: str) -> list[str]:
    wanted = ["sqlite", "postgres"] if db == "both" else [db]
    if "postgres" in wanted and not stores.postgres_reachable():
        print(f"PostgreSQL does not answer at {stores.PG_SERVER}: its runs are skipped.")
        wanted.remove("postgres")
    return wanted


def plan(peers: list[Peer], store_names: list[str], sizes: Sizes, notes: list[str]) -> list[Bench]:
    """One Bench per system and store; Redis-backed systems run once and join every table."""
    redis_up = stores.redis_reachable()
    benches = []
    for peer in peers:
        targets = [s for s in store_names if s in peer.stores]
        if "redis" in peer.stores and store_names:
            if not redis_up:
                notes.append(f"{peer.name}: Redis does not answer at {stores.REDIS_SERVER}; skipped.")
                continue
            targets = ["redis"]
        if not targets:
            continue
        try:
            python = venvs.ensure(peer)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            notes.append(f"{peer.name}: could not be installed ({exc}); skipped.")
            continue
        benches.extend(Bench(peer, store, python, sizes) for store in targets)
    return benches


def measure(
    benches: list[Bench], runs: int, sizes: Sizes, notes: list[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Runs are interleaved across systems so that a noisy spell hits them all alike.

    Each system gets the median of its runs per row, and the drop rows are computed
    from those medians (the per-run drops are kept beside them).
    """
    ready = []
    for bench in benches:
        try:
            bench.prepare()
            ready.append(bench)
        except Exception as exc:  # a peer that cannot start is reported, the others still run
            notes.append(f"{bench.peer.name} on {bench.store}: setup failed: {exc}")
    collected: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in range(1, runs + 1):
        for bench in ready:
            print(f"run {run}/{runs}: {bench.peer.name} on {bench.store}:", end=" ", flush=True)
            figures = bench.run_once()
            print("  ".join(f"{m} {report.figure(v)}" for m, v in figures.items()), flush=True)
            collected.setdefault((bench.store, bench.peer.name), []).append(figures)
    for bench in ready:
        bench.cleanup()
        notes.extend(dict.fromkeys(bench.notes))
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for (store, name), per_run in collected.items():
        per_run = [rows.with_drops(figures, sizes.drains) for figures in per_run]
        medians = {key: median([r.get(key) for r in per_run]) for key in rows.measured(sizes.drains)}
        results.setdefault(store, {})[name] = {
            key: {"median": value, "runs": [r.get(key) for r in per_run]}
            for key, value in rows.with_drops(medians, sizes.drains).items()
        }
    return results


def tables(
    results: dict[str, dict[str, dict[str, Any]]], store_names: list[str], runs: int, sizes: Sizes
) -> str:
    out = []
    redis_columns = results.get("redis", {})
    for store in store_names:
        columns = {**results.get(store, {}), **redis_columns}
        if not columns:
            continue
        medians = {
            name: {m: entry["median"] for m, entry in metrics.items()} for name, metrics in columns.items()
        }
        labels = {name: ("redis" if name in redis_columns else store) for name in columns}
        out.append(report.table(store, medians, runs, labels, rows.metrics(sizes.drains)))
    return "\n\n".join(out)


def shown(bench: Bench, argv: list[str]) -> str:
    """A command exactly as run, typed from the repository root with its environment."""
    target = bench.target()
    env = {bench.peer.url_var: target.url, **bench.peer.env}
    if bench.peer.requirements:
        env["PYTHONPATH"] = "."
    words = [f"{k}={v}" for k, v in env.items()]
    words += [os.path.relpath(a, ROOT) if a.startswith(str(ROOT)) else a for a in argv]
    return " ".join(shlex.quote(word) for word in words)


def counted(lines: list[str]) -> list[str]:
    """Identical commands started together, shown once with their count."""
    return [
        line if lines.count(line) == 1 else f"{lines.count(line)} x {line}" for line in dict.fromkeys(lines)
    ]


def commands(benches: list[Bench]) -> dict[str, dict[str, Any]]:
    described: dict[str, dict[str, Any]] = {}
    for bench in benches:
        peer, target = bench.peer, bench.target()
        about = described.setdefault(peer.name, {"config": peer.config, "install": list(peer.requirements)})
        about[bench.store] = {
            "setup": [shown(bench, argv) for argv in peer.setup(target)],
            "workers": counted([shown(bench, argv) for argv in peer.workers(target)]),
        }
    return described


def print_commands(described: dict[str, dict[str, Any]]) -> None:
    print("\nWorker commands, from the repository root:")
    for name, about in described.items():
        print(f"  {name}: {about['config']}")
        if about["install"]:
            print(f"    venv var/bench/venvs/{name}: pip install {' '.join(about['install'])}")
        for store, how in about.items():
            if isinstance(how, dict):
                for line in how["workers"]:
                    print(f"    [{store}] {line}")


def console(run: bool, quick: bool) -> None:
    """W5 lives in bench/console.py (its own database); mention it, or run it on request."""
    if not CONSOLE_BENCH.exists():
        return
    url = os.environ.get("DATABASE_URL") or stores.postgres_url("taskweb_bench")
    argv = [str(venvs.project_python()), str(CONSOLE_BENCH), *(["--jobs", "20000"] if quick else [])]
    shown_argv = f"DATABASE_URL={url} {' '.join(os.path.relpath(a, ROOT) for a in argv)}"
    if not run:
        print(f"\nW5 (console pages at 1M jobs) is separate: {shown_argv}, or add --console.")
        return
    print(f"\nW5: {shown_argv}", flush=True)
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run(argv, cwd=ROOT, env=env, timeout=3600, check=False)


def main(argv: list[str]) -> int:
    args = parse(argv)
    procs.install_signal_handlers()
    sizes = chosen_sizes(args)
    notes: list[str] = []
    started = datetime.datetime.now(datetime.UTC)
    try:
        store_names = chosen_stores(args.db)
        benches = plan(chosen_peers(args.only), store_names, sizes, notes)
        results = measure(benches, args.runs, sizes, notes)
    except KeyboardInterrupt:
        print("\ninterrupted: workers stopped, nothing written.")
        return 130
    finally:
        procs.stop_all()
    print()
    print(tables(results, store_names, args.runs, sizes))
    print(
        "\nRatios are Taskweb / peer: above 1 Taskweb is faster for jobs/s, slower for ms, bigger for MB."
        "\nW3 drop: how much slower the largest drain ran than the smallest (negative: faster)."
        f"\nW6: {sizes.quick_jobs} quick jobs {sizes.fair_gap_ms:g} ms apart while long jobs of "
        f"{sizes.hold:g} s fill all slots but one (uncapped systems get {TASKWEB_SLOTS - 1}, as Taskweb)."
    )
    described = commands(benches)
    print_commands(described)
    for line in notes + report.failures(results):
        print(f"note: {line}")
    report.write_json(
        args.output,
        {
            "started": started.isoformat(timespec="seconds"),
            "machine": {
                "cpus": os.cpu_count(),
                "platform": platform.platform(),
                "python": platform.python_version(),
            },
            "runs": args.runs,
            "sizes": vars(sizes),
            "metrics": {key: f"{row.label} ({row.unit})" for key, row in rows.metrics(sizes.drains).items()},
            "results": results,
            "commands": described,
            "notes": notes,
        },
    )
    print(f"\nwrote {os.path.relpath(args.output, ROOT)}")
    console(args.console, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
