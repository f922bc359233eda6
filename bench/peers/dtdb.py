"""django-tasks-db: Django 5.2 + django-tasks with the ORM backend and its ``db_worker``.

``db_worker`` runs one task at a time in one process and has no concurrency option;
its documentation scales out with more worker processes, so two run, one per core.
It has no bulk enqueue API, so W2 is n/a and W3 is seeded inside one transaction.
"""

from __future__ import annotations

import os

from bench.peers.base import Peer, Target

PROCESSES = 2
SETTINGS = "bench.peers.dtdb_settings"


def setup(target: Target) -> list[list[str]]:
    return [[f"{target.bin_dir}/django-admin", "migrate", "--noinput", "-v", "0", "--settings", SETTINGS]]


def workers(target: Target) -> list[list[str]]:
    argv = [
        f"{target.bin_dir}/django-admin",
        "db_worker",
        "--settings",
        SETTINGS,
        "--queue-name",
        "default",
        "--no-startup-delay",
        "--no-reload",
        "-v",
        "0",
    ]
    return [argv for _ in range(PROCESSES)]  # each process draws its own random worker id


PEER = Peer(
    name="django-tasks-db",
    module=__name__,
    stores=("sqlite", "postgres"),
    requirements=(
        "Django==5.2.19",
        "django-tasks==0.12.0",
        "django-tasks-db==0.13.0",
        "psycopg[binary]==3.3.9",
    ),
    setup=setup,
    workers=workers,
    config=f"{PROCESSES} db_worker processes, default 1 s poll interval, persistent connections, "
    "SQLite in WAL mode",
    slots=PROCESSES,
)


class DtdbClient:
    def __init__(self) -> None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
        import django

        django.setup()
        from django_tasks_db.models import DBTaskResult

        from bench.peers.dtdb_tasks import long, noop, stamp

        self.noop, self.stamp, self.long = noop, stamp, long
        self.succeeded = DBTaskResult.objects.filter(status="SUCCESSFUL")

    enqueue_bulk = None

    def enqueue_one(self) -> None:
        self.noop.enqueue()

    def seed(self, n: int) -> None:
        from django.db import transaction

        with transaction.atomic():
            for _ in range(n):
                self.noop.enqueue()

    def enqueue_stamp(self, path: str, enqueued: float) -> None:
        self.stamp.enqueue(path, enqueued)

    def enqueue_long(self, path: str, enqueued: float, seconds: float) -> None:
        self.long.enqueue(path, enqueued, seconds)

    def finished(self) -> int:
        return self.succeeded.count()


def client() -> DtdbClient:
    return DtdbClient()
