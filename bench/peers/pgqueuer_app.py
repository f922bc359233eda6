"""The factory ``pgq run bench.peers.pgqueuer_app:create`` loads: one asyncpg connection per
process (its performance guide: a direct connection, not a pool, for the QueueManager) and
the three entrypoints every system has."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from pgqueuer import PgQueuer
from pgqueuer.models import Job

from bench import stamps


def dsn() -> str:
    return os.environ.get("BENCH_URL", "postgres://postgres@127.0.0.1:5432/taskweb_bench_pgqueuer")


def arguments(job: Job) -> dict:
    return json.loads(job.payload or b"{}")


@asynccontextmanager
async def create() -> AsyncIterator[PgQueuer]:
    connection = await asyncpg.connect(dsn())
    pgq = PgQueuer.from_asyncpg_connection(connection)

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        pass

    @pgq.entrypoint("stamp")
    async def stamp(job: Job) -> None:
        stamps.record(**arguments(job))

    @pgq.entrypoint("long")
    async def long(job: Job) -> None:
        args = arguments(job)
        stamps.record(args["path"], args["enqueued"])
        await asyncio.sleep(args["seconds"])

    try:
        yield pgq
    finally:
        await connection.close()
