"""Tests of a data migration: migrate the test database back, write old rows, migrate on."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def migrate(target: list[tuple[str, str]]) -> Any:
    """Migrate the test database to ``target``; the apps (models) as they were there."""
    executor = MigrationExecutor(connection)
    executor.migrate(target)
    return executor.loader.project_state(target).apps


def schema_at(target: list[tuple[str, str]]) -> Iterator[Any]:
    """For a fixture: the apps at ``target``, and the latest schema again afterwards."""
    yield migrate(target)
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
