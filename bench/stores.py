"""Fresh, empty stores for every workload, and nothing else touched.

Each system's schema is built once in a template (a SQLite file, or a PostgreSQL
database used as TEMPLATE) and cloned per workload, so a workload never pays for
migrations nor sees the rows of the previous one. Only databases named
``taskweb_bench_*``, files under ``var/bench/`` and the Redis database numbers given
to the Redis-backed systems are ever created, dropped or flushed.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

PG_SERVER = "postgres://postgres@127.0.0.1:5432"
REDIS_SERVER = "redis://127.0.0.1:6379"
PREFIX = "taskweb_bench_"
TAG = os.environ.get("BENCH_DB_TAG", "")
"""Put into every database name after PREFIX, so two benchmarks can share one server."""
if not re.fullmatch(r"[a-z0-9_]*", TAG):
    raise SystemExit(f"BENCH_DB_TAG={TAG!r}: use lower-case letters, digits and underscores only")


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


def _connect(url: str) -> Any:
    """A DB-API connection in autocommit to a ``sqlite:///`` or ``postgres://`` URL."""
    if url.startswith("sqlite:///"):
        return sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
    import psycopg

    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def analyze(url: str) -> None:
    """Give the planner statistics on every table, as ``ANALYZE`` after a bulk load does."""
    conn = _connect(url)
    try:
        conn.execute("ANALYZE")
    finally:
        conn.close()


PG_TABLES_KNOWN = """
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND (c.reltuples >= 0 OR EXISTS (SELECT 1 FROM pg_statistic s WHERE s.starelid = c.oid))
"""
"""reltuples stays -1 until a VACUUM, ANALYZE or index build has looked at the table; a
database cloned from a template carries the template's (-1 after migrations here)."""


def tables_with_statistics(url: str) -> int:
    """How many tables the planner knows the size or contents of (0: never analysed)."""
    conn = _connect(url)
    try:
        if isinstance(conn, sqlite3.Connection):
            if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
                return 0
            return conn.execute("SELECT count(DISTINCT tbl) FROM sqlite_stat1").fetchone()[0]
        return conn.execute(PG_TABLES_KNOWN).fetchone()[0]
    finally:
        conn.close()


def _admin() -> Any:
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
