"""The seam between the lifecycle and each database's own SQL.

The lifecycle speaks portable SQL through Django's connection everywhere it can; the
few statements that must differ (the claim, JSON parameters, wake-up notifications)
live in one small engine per database, chosen once from ``connection.vendor``.
"""

from __future__ import annotations

from functools import cache

from django.db import connection

from .base import Engine


@cache
def _engine_for(vendor: str) -> Engine:
    if vendor == "postgresql":
        from .postgresql import PostgresEngine

        return PostgresEngine()
    if vendor == "sqlite":
        from .sqlite import SQLiteEngine

        return SQLiteEngine()
    raise NotImplementedError(
        f"Taskweb runs on PostgreSQL and SQLite; the {vendor!r} database is not supported."
    )


def get_engine() -> Engine:
    return _engine_for(connection.vendor)


__all__ = ["Engine", "get_engine"]
