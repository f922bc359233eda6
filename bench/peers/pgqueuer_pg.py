"""PgQueuer on PostgreSQL with asyncpg, as its performance guide advises for short jobs:
two ``pgq run`` processes (one per core) dequeuing batches of 100, LISTEN/NOTIFY (its
default, with the 30 s polling fallback), async entrypoints run as coroutines, no cap on
concurrent tasks (its default), tables durable (its default, like every other system
here) and its recommended autovacuum settings applied (``pgq autovac``, which also sets
``fillfactor`` 70 on the queue table). Bulk enqueue is ``Queries.enqueue`` given lists.

A finished job is deleted from ``pgqueuer`` and logged to ``pgqueuer_log`` in the same
statement, so W3 counts ``successful`` rows of the log.
"""

from __future__ import annotations

import json

from bench.peers.base import Peer, Target

PROCESSES = 2
BATCH_SIZE = 100
FACTORY = "bench.peers.pgqueuer_app:create"


def command(target: Target) -> list[str]:
    return [f"{target.bin_dir}/pgq", "--pg-dsn", target.url]


def setup(target: Target) -> list[list[str]]:
    return [[*command(target), "install"], [*command(target), "autovac"]]


def workers(target: Target) -> list[list[str]]:
    argv = [*command(target), "run", FACTORY, "--batch-size", str(BATCH_SIZE), "--log-level", "WARNING"]
    return [argv for _ in range(PROCESSES)]


PEER = Peer(
    name="pgqueuer",
    module=__name__,
    stores=("postgres",),
    # typer as in PgQueuer's own uv.lock: with the newest (0.29) ``pgq run`` crashes at start-up
    # (its --log-level parser hands a str to a function expecting its LogLevel enum).
    requirements=("pgqueuer==1.6.0", "asyncpg==0.32.0", "typer==0.19.2"),
    setup=setup,
    workers=workers,
    config=f"{PROCESSES} x pgq run, batch size {BATCH_SIZE}, asyncpg, LISTEN/NOTIFY, no concurrency cap, "
    "durable tables, pgq autovac",
)


class PgQueuerClient:
    """PgQueuer's producer API is asynchronous: one event loop (uvloop, as its examples use)
    and one asyncpg connection serve every call, so a call costs no loop start-up."""

    def __init__(self) -> None:
        import asyncpg
        import uvloop
        from pgqueuer.queries import Queries

        from bench.peers.pgqueuer_app import dsn

        self.loop = uvloop.new_event_loop()
        self.connection = self.loop.run_until_complete(asyncpg.connect(dsn()))
        self.queries = Queries.from_asyncpg_connection(self.connection)

    def enqueue_one(self) -> None:
        self.loop.run_until_complete(self.queries.enqueue("noop", None))

    def enqueue_bulk(self, n: int) -> None:
        self.loop.run_until_complete(self.queries.enqueue(["noop"] * n, [None] * n, [0] * n))

    def seed(self, n: int) -> None:
        self.enqueue_bulk(n)

    def enqueue_stamp(self, path: str, enqueued: float) -> None:
        payload = json.dumps({"path": path, "enqueued": enqueued}).encode()
        self.loop.run_until_complete(self.queries.enqueue("stamp", payload))

    def enqueue_long(self, path: str, enqueued: float, seconds: float) -> None:
        payload = json.dumps({"path": path, "enqueued": enqueued, "seconds": seconds}).encode()
        self.loop.run_until_complete(self.queries.enqueue("long", payload))

    def finished(self) -> int:
        return self.loop.run_until_complete(
            self.connection.fetchval("SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'")
        )


def client() -> PgQueuerClient:
    return PgQueuerClient()
