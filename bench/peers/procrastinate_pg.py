"""procrastinate on PostgreSQL: asynchronous tasks, two worker processes (one per core,
as its concurrency guide suggests for throughput) each running ten sub-workers, with
LISTEN/NOTIFY on (its default). Bulk enqueue is ``Task.batch_defer``.
"""

from __future__ import annotations

from bench.peers.base import Peer, Target

PROCESSES = 2
SUB_WORKERS = 10
APP = "bench.peers.procrastinate_app.app"


def command(target: Target) -> list[str]:
    """The CLI with per-job logging off, as every system here runs at WARNING."""
    return [f"{target.bin_dir}/procrastinate", "--log-level", "warning", "--app", APP]


def setup(target: Target) -> list[list[str]]:
    return [[*command(target), "schema", "--apply"]]


def workers(target: Target) -> list[list[str]]:
    argv = [*command(target), "worker", "--concurrency", str(SUB_WORKERS)]
    return [argv for _ in range(PROCESSES)]


PEER = Peer(
    name="procrastinate",
    module=__name__,
    stores=("postgres",),
    requirements=("procrastinate==3.10.0", "psycopg[binary]==3.3.9"),
    setup=setup,
    workers=workers,
    config=f"{PROCESSES} worker processes x {SUB_WORKERS} sub-workers, async tasks, LISTEN/NOTIFY",
    slots=PROCESSES * SUB_WORKERS,
)


class ProcrastinateClient:
    def __init__(self) -> None:
        import psycopg

        from bench.peers import procrastinate_app

        self.app = procrastinate_app.app
        self.app.open()
        self.noop, self.stamp, self.long = (
            procrastinate_app.noop,
            procrastinate_app.stamp,
            procrastinate_app.long,
        )
        self.conn = psycopg.connect(procrastinate_app.conninfo(), autocommit=True)

    def enqueue_one(self) -> None:
        self.noop.defer()

    def enqueue_bulk(self, n: int) -> None:
        self.noop.batch_defer(*({} for _ in range(n)))

    def seed(self, n: int) -> None:
        self.enqueue_bulk(n)

    def enqueue_stamp(self, path: str, enqueued: float) -> None:
        self.stamp.defer(path=path, enqueued=enqueued)

    def enqueue_long(self, path: str, enqueued: float, seconds: float) -> None:
        self.long.defer(path=path, enqueued=enqueued, seconds=seconds)

    def finished(self) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
        ).fetchone()
        return row[0]


def client() -> ProcrastinateClient:
    return ProcrastinateClient()
