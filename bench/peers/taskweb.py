"""Taskweb itself, from the project's virtualenv: one ``runworker`` process.

One child per core runs the jobs; ``--prefetch`` lets the parent claim ahead of them,
which ``runworker --help`` advises for short jobs (128: as many as Celery reserves here
with two processes and a prefetch multiplier of 64). ``BENCH_TASKWEB_ARGS`` replaces
these options, to try another setting without editing this file.
"""

from __future__ import annotations

import os
import shlex

from bench.peers.base import Peer, Target

WORKER_ARGS = "--concurrency 2 --prefetch 128"


def setup(target: Target) -> list[list[str]]:
    return [[target.python, "manage.py", "migrate", "--noinput", "-v", "0"]]


def workers(target: Target) -> list[list[str]]:
    args = shlex.split(os.environ.get("BENCH_TASKWEB_ARGS", WORKER_ARGS))
    return [[target.python, "manage.py", "runworker", *args]]


PEER = Peer(
    name="taskweb",
    module=__name__,
    stores=("sqlite", "postgres"),
    requirements=(),
    setup=setup,
    workers=workers,
    config="one runworker process (options in its command); LISTEN/NOTIFY on PostgreSQL (default)",
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
