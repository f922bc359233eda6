"""Taskweb itself, from the project's virtualenv: one ``runworker`` process.

Its children run the jobs while the parent claims and acknowledges in batches, so one
child per core keeps both cores busy with no-op jobs.
"""

from __future__ import annotations

import os

from bench.peers.base import Peer, Target

CONCURRENCY = 2


def setup(target: Target) -> list[list[str]]:
    return [[target.python, "manage.py", "migrate", "--noinput", "-v", "0"]]


def workers(target: Target) -> list[list[str]]:
    return [[target.python, "manage.py", "runworker", "--concurrency", str(CONCURRENCY)]]


PEER = Peer(
    name="taskweb",
    module=__name__,
    stores=("sqlite", "postgres"),
    requirements=(),
    setup=setup,
    workers=workers,
    config="one runworker, one child per core; LISTEN/NOTIFY on PostgreSQL (default)",
    env={"LOG_LEVEL": "WARNING"},
    url_var="DATABASE_URL",
)


class TaskwebClient:
    def __init__(self) -> None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskweb.settings")
        import django

        django.setup()
        from bench.tasks import noop, stamp
        from queues.models import Job
        from queues.states import Status

        self.noop, self.stamp = noop, stamp
        self.succeeded = Job.objects.filter(status=Status.SUCCEEDED)

    def enqueue_one(self) -> None:
        self.noop.enqueue()

    def enqueue_bulk(self, n: int) -> None:
        self.noop.enqueue_many([((), {})] * n)

    def seed(self, n: int) -> None:
        self.enqueue_bulk(n)

    def enqueue_stamp(self, path: str, enqueued: float) -> None:
        self.stamp.enqueue(path, enqueued)

    def finished(self) -> int:
        return self.succeeded.count()


def client() -> TaskwebClient:
    return TaskwebClient()
