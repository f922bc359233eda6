"""The soak test: does Taskweb's hot table stay small, and its claim cheap, under steady load?

    python bench/soak.py [--minutes 30] [--rate 500] [--interval 60] [--baseline 5]
                         [--worker-args "..."] [--keep] [--output var/bench/soak.json]

It starts a private PostgreSQL cluster (initdb + pg_ctl, as the chaos suite does) with
production settings: fsync on, autovacuum on with its default settings (the machine's
own server runs with autovacuum off, where no bloat figure would mean anything). Then
one ``runworker`` with default options and a producer (bench/steady.py) that enqueues
``--rate`` jobs per second for ``--minutes``. Every ``--interval`` seconds it records:

- for every table the load writes (found in ``pg_stat_user_tables``, not from a list
  kept here, so a schema change is followed): heap, index and total size, each index's
  size, live and dead tuples, the share of updates that were HOT, autovacuum runs;
- enqueue -> start of the jobs that started in the interval (p50, p99, max), measured
  from outside: each job writes its enqueue time beside its start time to a file;
- the claim's cost, from outside: an EXPLAIN (ANALYZE, BUFFERS) of a claim-shaped read,
  ``SELECT id ... FOR UPDATE SKIP LOCKED LIMIT 100`` over waiting jobs in claim order
  (``Job.objects.waiting()``, priority then age), rolled back; the median of five. The buffers it touches grow
  when the index it walks fills with dead entries, which is how bloat makes a claim
  slower; the worker's own claim statement is not copied here, so it cannot drift from
  it unseen. The latency percentiles show what a slower claim costs the jobs;
- how many jobs are waiting (a worker that cannot keep up shows as a growing backlog).

The verdict compares the end with minute ``--baseline`` (5): the hot table (the one
whose rows die most: updates + deletes) and each of its indexes at most 2x their size
then, the probe's buffers and the p99 latency flat (at most 1.5x), and the backlog
(less than one second of the load waiting). Everything is also written to ``--output``.
The cluster is removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import bloat, cluster, stamps
from bench.bloat import ProbeCost, TableSample

ROOT = cluster.ROOT
OUTPUT = ROOT / "var" / "bench" / "soak.json"
LOGS = ROOT / "var" / "bench" / "logs" / "soak"
PRODUCTION = {"fsync": "on", "autovacuum": "on", "log_autovacuum_min_duration": "0"}
"""Server settings on top of initdb's defaults; logging autovacuum changes nothing it does."""
SHOWN_SETTINGS = (
    "fsync",
    "synchronous_commit",
    "autovacuum",
    "autovacuum_naptime",
    "autovacuum_vacuum_scale_factor",
    "autovacuum_vacuum_insert_scale_factor",
    "shared_buffers",
)
PROBE_LIMIT = 100
PROBE_REPEAT = 5
SIZE_LIMIT = 2.0
FLAT_LIMIT = 1.5
MB = 1024 * 1024
KEPT_UP = {
    True: "the worker kept up",
    False: "the worker fell behind the load: the figures above measure a growing backlog, "
    "not a steady state (lower --rate)",
}


@dataclass
class Minute:
    """One sample: the catalog, the claim probe and the jobs that started since the last one."""

    minute: float
    tables: list[TableSample]
    probe: ProbeCost | None
    waiting: int
    started: int
    latency: dict[str, float] = field(default_factory=dict)

    def table(self, name: str) -> TableSample | None:
        return next((t for t in self.tables if t.name == name), None)


class StampTail:
    """The (enqueued, started) lines appended to the stamps file since the last read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def new(self) -> list[tuple[float, float]]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as stream:
            stream.seek(self.offset)
            data = stream.read()
        complete = data[: data.rfind(b"\n") + 1]  # a line still being written waits
        self.offset += len(complete)
        return stamps.parse(complete.decode())


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="how long the load runs (default 30)")
    parser.add_argument("--rate", type=float, default=500.0, help="jobs enqueued per second (default 500)")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between samples (default 60)")
    parser.add_argument(
        "--baseline", type=float, default=5.0, help="minute the end is compared with (default 5)"
    )
    parser.add_argument(
        "--worker-args", default="", help='runworker options (default none), e.g. "--prefetch 32"'
    )
    parser.add_argument("--keep", action="store_true", help="leave the cluster's directory in place")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    for name in ("minutes", "rate", "interval"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be above 0")
    return args


def worker_environment(url: str) -> dict[str, str]:
    """What a production worker gets: the database URL and nothing tuned for tests."""
    env = {key: value for key, value in os.environ.items() if key not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        DATABASE_URL=url, DJANGO_SETTINGS_MODULE="taskweb.settings", PYTHONUNBUFFERED="1", LOG_LEVEL="WARNING"
    )
    return env


def use_database(url: str) -> None:
    """Point this process's Django at the soak database (the probe and the backlog count use it)."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskweb.settings")
    import django

    django.setup()


def claim_probe() -> ProbeCost | None:
    """EXPLAIN (ANALYZE, BUFFERS) of a claim-shaped read, rolled back (see the module docstring).

    None, with the reason printed, if the model no longer offers what it is built from:
    the soak then still reports sizes and latencies.
    """
    from django.core.exceptions import FieldError
    from django.db import DatabaseError, connection, transaction
    from django.utils import timezone

    from queues.models import Job

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            claimable = (
                Job.objects.waiting()
                .filter(run_after__lte=timezone.now())
                .order_by("-priority", "run_after", "id")
                .select_for_update(skip_locked=True)
                .values_list("id", flat=True)[:PROBE_LIMIT]
            )
            sql, params = claimable.query.sql_with_params()
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
            transaction.set_rollback(True)
    except (AttributeError, FieldError, DatabaseError) as exc:
        print(f"claim probe unavailable: {exc}", flush=True)
        return None
    return bloat.probe_cost(plan)


def median_probe() -> ProbeCost | None:
    """The median (by buffers) of a few probes taken back to back: one probe may land just
    as the worker has taken every waiting job, or just before a burst of them."""
    probes = [probe for _ in range(PROBE_REPEAT) if (probe := claim_probe())]
    return sorted(probes, key=lambda probe: probe.buffers)[len(probes) // 2] if probes else None


def waiting() -> int:
    from queues.models import Job

    return Job.objects.waiting().count()


def take(conn: Any, minute: float, tail: StampTail, before: dict[str, int]) -> Minute:
    runs = tail.new()
    latencies = sorted((started - enqueued) * 1000 for enqueued, started in runs)
    return Minute(
        minute=minute,
        tables=bloat.tables(conn, before),
        probe=median_probe(),
        waiting=waiting(),
        started=len(runs),
        latency=stamps.summary(latencies) if latencies else {},
    )


def show_minute(sample: Minute, hot: str | None, interval: float) -> str:
    lines = []
    for index, table in enumerate(sample.tables):
        when = f"{sample.minute:5.1f}" if index == 0 else " " * 5
        name = f"{table.name} (hot)" if table.name == hot else table.name
        hot_share = "-" if table.hot_share is None else f"{table.hot_share * 100:.0f}"
        lines.append(
            f"{when}  {name:<28}{table.heap / MB:9.1f}{table.indexes / MB:9.1f}{table.total / MB:9.1f}"
            f"{table.live:11,}{table.dead:10,}{hot_share:>6}{table.autovacuums:>8}"
        )
    latency = sample.latency
    timing = (
        f"p50 {latency['p50_ms']:.1f} ms  p99 {latency['p99_ms']:.1f} ms  max {latency['max_ms']:.0f} ms"
        if latency
        else "no job started"
    )
    probe = sample.probe
    probed = f"{probe.buffers} buffers {probe.ms:.2f} ms ({probe.index or 'no index'})" if probe else "n/a"
    lines.append(
        f"       {sample.started:,} jobs started ({sample.started / interval:,.0f}/s), "
        f"enqueue->start {timing}; {sample.waiting:,} waiting; claim probe {probed}"
    )
    return "\n".join(lines)


HEADER = (
    f"{'min':>5}  {'table':<28}{'heap MB':>9}{'idx MB':>9}{'total MB':>9}{'live':>11}{'dead':>10}"
    f"{'HOT %':>6}{'autovac':>8}"
)


def ratio(before: float, after: float) -> float | None:
    return after / before if before else None


def judged(value: float | None, limit: float) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}x {'ok' if value <= limit else f'OVER {limit:g}x'}"


def verdict(samples: list[Minute], baseline_minute: float, rate: float) -> tuple[list[str], dict[str, Any]]:
    """Lines to print and the same verdict as data: the end against the sample at the baseline.

    Judged: the hot table and each of its indexes (at most 2x), the claim probe's buffers
    and the p99 latency (at most 1.5x). The other tables the load wrote are shown, not
    judged: the attempt history grows with every job by design. The worker kept up if less
    than one second of the load (``rate`` jobs) is waiting at the end.
    """
    end = samples[-1]
    base = next((s for s in samples if s.minute >= baseline_minute - 1e-6), end)
    hot = bloat.hot_table(end.tables)
    data: dict[str, Any] = {"baseline_minute": base.minute, "end_minute": end.minute, "hot_table": hot}
    lines = [f"Verdict: minute {base.minute:.1f} against minute {end.minute:.1f}; hot table {hot}"]
    if base is end:
        lines.append(f"  the run ended before minute {baseline_minute:g}: no trend to judge")
        return lines, data
    for table in end.tables:
        before = base.table(table.name)
        start = before.total if before else 0
        total_ratio = ratio(start, table.total)
        data.setdefault("tables", {})[table.name] = total_ratio
        if table.name != hot:
            shown = "n/a" if total_ratio is None else f"{total_ratio:.2f}x"
            lines.append(
                f"  {table.name}: {start / MB:.1f} -> {table.total / MB:.1f} MB ({shown}, not judged)"
            )
            continue
        lines.append(
            f"  {table.name}: total {start / MB:.1f} -> {table.total / MB:.1f} MB: "
            f"{judged(total_ratio, SIZE_LIMIT)}"
        )
        for index, size in table.index_sizes.items():
            was = before.index_sizes.get(index, 0) if before else 0
            index_ratio = ratio(was, size)
            data.setdefault("indexes", {})[index] = index_ratio
            lines.append(
                f"      {index}: {was / MB:.2f} -> {size / MB:.2f} MB: {judged(index_ratio, SIZE_LIMIT)}"
            )
    if base.probe and end.probe:
        data["probe_buffers"] = ratio(base.probe.buffers, end.probe.buffers)
        lines.append(
            f"  claim probe: {base.probe.buffers} -> {end.probe.buffers} buffers: "
            f"{judged(data['probe_buffers'], FLAT_LIMIT)} ({base.probe.ms:.2f} -> {end.probe.ms:.2f} ms)"
        )
    if base.latency and end.latency:
        data["p99"] = ratio(base.latency["p99_ms"], end.latency["p99_ms"])
        lines.append(
            f"  enqueue->start p99: {base.latency['p99_ms']:.1f} -> {end.latency['p99_ms']:.1f} ms: "
            f"{judged(data['p99'], FLAT_LIMIT)}"
        )
    data["kept_up"] = end.waiting < rate
    lines.append(f"  waiting jobs: {base.waiting:,} -> {end.waiting:,}: " + KEPT_UP[data["kept_up"]])
    return lines, data


def settings(conn: Any) -> dict[str, str]:
    return {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in SHOWN_SETTINGS}


def run(args: argparse.Namespace) -> int:
    import psycopg

    server = cluster.PrivatePostgres(Path(tempfile.mkdtemp(prefix="taskweb-soak-pg-")), **PRODUCTION)
    server.init()
    server.start()
    processes: list[cluster.Process] = []
    samples: list[Minute] = []
    try:
        url = server.create_database("taskweb_soak")
        cluster.manage(url, "migrate", "--noinput")
        conn = psycopg.connect(url, autocommit=True)
        shown = settings(conn)
        print(
            f"private PostgreSQL on port {server.port} ({server.dir}): "
            + ", ".join(f"{k}={v}" for k, v in shown.items()),
            flush=True,
        )
        use_database(url)
        stamp_file = LOGS / "stamps.txt"
        stamp_file.parent.mkdir(parents=True, exist_ok=True)
        stamp_file.unlink(missing_ok=True)
        tail = StampTail(stamp_file)
        env = worker_environment(url)
        worker_argv = [cluster.PYTHON, "manage.py", "runworker", *shlex.split(args.worker_args)]
        producer_argv = [
            cluster.PYTHON,
            "-m",
            "bench.steady",
            "--rate",
            f"{args.rate:g}",
            "--seconds",
            f"{args.minutes * 60:g}",
            "--stamps",
            str(stamp_file),
        ]
        print("worker:   " + " ".join(worker_argv[1:]))
        print("producer: " + " ".join(producer_argv[1:]), flush=True)
        before = bloat.writes(conn)
        processes.append(cluster.Process(worker_argv, env, LOGS, "worker"))
        processes.append(cluster.Process(producer_argv, env, LOGS, "producer"))
        began = time.monotonic()
        print(HEADER, flush=True)
        for tick in range(1, int(args.minutes * 60 / args.interval) + 1):
            time.sleep(max(0.0, began + tick * args.interval - time.monotonic()))
            for process in processes:
                # The producer may finish its last tick just before the last sample.
                if not process.alive() and (process.name == "worker" or process.proc.returncode):
                    raise RuntimeError(f"{process.name} exited early:\n{process.output()[-2000:]}")
            sample = take(conn, (time.monotonic() - began) / 60, tail, before)
            samples.append(sample)
            print(show_minute(sample, bloat.hot_table(sample.tables), args.interval), flush=True)
        if not samples:
            raise RuntimeError("the run was shorter than one --interval: nothing sampled")
        lines, judgement = verdict(samples, args.baseline, args.rate)
        print("\n" + "\n".join(lines))
        write(args, shown, samples, judgement)
        return 0
    finally:
        for process in processes:
            process.stop()
        if args.keep:
            server.stop()
            print(f"cluster kept in {server.dir} (port {server.port})")
        else:
            server.remove()


def write(args: argparse.Namespace, shown: dict[str, str], samples: list[Minute], judgement: dict) -> None:
    args.output.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "server": shown,
        "samples": [
            {
                "minute": s.minute,
                "tables": [bloat.as_dict(t) for t in s.tables],
                "probe": bloat.as_dict(s.probe) if s.probe else None,
                "waiting": s.waiting,
                "started": s.started,
                "latency": s.latency,
            }
            for s in samples
        ],
        "verdict": judgement,
    }
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nwrote {os.path.relpath(args.output, ROOT)}")


def main(argv: list[str]) -> int:
    args = parse(argv)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted: worker, producer and cluster stopped.")
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
