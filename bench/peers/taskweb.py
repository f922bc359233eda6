"""Taskweb itself, from the project's virtualenv: one ``runworker`` process, no options.

The defaults are what a user gets and what the targets judge: one child per core (at
least two), as many claimed jobs waiting for a free child as there are children.
``BENCH_TASKWEB_ARGS`` adds options (e.g. ``--prefetch 128``), to try another setting
without editing this file.
"""

from __future__ import annotations

import argparse
import os
import shlex

from bench.peers.base import Peer, Target


def worker_args() -> list[str]:
    return shlex.split(os.environ.get("BENCH_TASKWEB_ARGS", ""))


def slots(args: list[str]) -> int:
    """Children the worker runs with ``args``: runworker's rule (``--help``), read without Django."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--concurrency", type=int, default=max(2, os.cpu_count() or 1))
    parser.add_argument("--autoscale", default=None)
    known, _ = parser.parse_known_args(args)
    if known.autoscale:
        return int(known.autoscale.split(",")[-1])
    return known.concurrency


def setup(target: Target) -> list[list[str]]:
    return [[target.python, "manage.py", "migrate", "--noinput", "-v", "0"]]


def workers(target: Target) -> list[list[str]]:
    return [[target.python, "manage.py", "runworker", *worker_args()]]


PEER = Peer(
    name="taskweb",
    module=__name__,
    stores=("sqlite", "postgres"),
    requirements=(),
    setup=setup,
    workers=workers,
    config="one runworker process, default options unless BENCH_TASKWEB_ARGS adds some (concurrency = "
    "CPU count, at least 2; prefetch adaptive); LISTEN/NOTIFY on PostgreSQL (default)",
    env={"LOG_LEVEL": "WARNING"},
    url_var="DATABASE_URL",
    slots=slots(worker_args()),
)


class TaskwebClient:
    def __init__(self) -> None:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskweb.settings")
        import django

        django.setup()
        from bench.tasks import long, noop, stamp
        from queues.models import Job
        from queues.states import Status

        self.noop, self.stamp, self.long = noop, stamp, long
        self.succeeded = Job.objects.filter(status=Status.SUCCEEDED)

    def enqueue_one(self) -> None:
        self.noop.enqueue()

    def enqueue_bulk(self, n: int) -> None:
        self.noop.enqueue_many([((), {})] * n)

    def seed(self, n: int) -> None:
        self.enqueue_bulk(n)

    def enqueue_stamp(self, path: str, enqueued: float) -> None:
        self.stamp.enqueue(path, enqueued)

    def enqueue_long(self, path: str, enqueued: float, seconds: float) -> None:
        self.long.enqueue(path, enqueued, seconds)

    def finished(self) -> int:
        return self.succeeded.count()


def client() -> TaskwebClient:
    return TaskwebClient()
