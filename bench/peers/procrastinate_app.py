"""The procrastinate App its workers load (``procrastinate --app bench.peers.procrastinate_app.app``)."""

from __future__ import annotations

import asyncio
import os

from procrastinate import App, PsycopgConnector

from bench import stamps


def conninfo() -> str:
    return os.environ.get(
        "BENCH_URL", "postgres://postgres@127.0.0.1:5432/taskweb_bench_procrastinate"
    ).replace("postgres://", "postgresql://", 1)


app = App(connector=PsycopgConnector(conninfo=conninfo()))


@app.task(name="noop")
async def noop() -> None:
    pass


@app.task(name="stamp")
async def stamp(path: str, enqueued: float) -> None:
    stamps.record(path, enqueued)


@app.task(name="long")
async def long(path: str, enqueued: float, seconds: float) -> None:
    stamps.record(path, enqueued)
    await asyncio.sleep(seconds)
