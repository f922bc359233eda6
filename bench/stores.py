"""Fresh, empty stores for every workload, and nothing else touched.

Each system's schema is built once in a template (a SQLite file, or a PostgreSQL
database used as TEMPLATE) and cloned per workload, so a workload never pays for
migrations nor sees the rows of the previous one. Only databases named
``taskweb_bench_*``, files under ``var/bench/`` and the Redis database numbers given
to the Redis-backed systems are ever created, dropped or flushed.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

PG_SERVER = "postgres://postgres@127.0.0.1:5432"
REDIS_SERVER = "redis://127.0.0.1:6379"
PREFIX = "taskweb_bench_"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path.resolve()}"


def postgres_url(name: str) -> str:
    return f"{PG_SERVER}/{name}"


def reset_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)


def clone_sqlite(template: Path, path: Path) -> None:
    """Copy a template after folding its WAL into the main file."""
    with sqlite3.connect(template) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    reset_sqlite(path)
    shutil.copyfile(template, path)


def _admin() -> object:
    import psycopg

    return psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5)


def reset_postgres(name: str, template: str | None = None) -> None:
    """Drop and recreate ``name`` (only ever a ``taskweb_bench_*`` database)."""
    from psycopg import sql

    if not name.startswith(PREFIX) or (template and not template.startswith(PREFIX)):
        raise ValueError(f"refusing to touch database {name!r}")
    with _admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(create)


def drop_postgres(names: list[str]) -> None:
    from psycopg import sql

    with _admin() as conn:
        for name in names:
            if name.startswith(PREFIX):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def postgres_reachable() -> bool:
    try:
        _admin().close()
    except Exception:
        return False
    return True


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url, socket_timeout=5).flushdb()


def redis_reachable() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_SERVER, socket_timeout=2).ping())
    except redis.RedisError:
        return False
