"""Celery with Redis as broker, configured as Celery's optimizing guide advises for many
short tasks: the prefork pool with one process per core, a large prefetch multiplier,
results ignored, and no gossip/mingle/heartbeat chatter between workers.

Celery keeps no record of finished tasks when results are ignored, so the worker counts
successes with one Redis INCR per task (``task_success`` signal) for W3 to watch.
"""

from __future__ import annotations

from bench.peers.base import Peer, Target

CONCURRENCY = 2
APP = "bench.peers.celery_app"


def workers(target: Target) -> list[list[str]]:
    return [
        [
            f"{target.bin_dir}/celery",
            "-A",
            APP,
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(CONCURRENCY),
            "--prefetch-multiplier",
            "64",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
        ]
    ]


PEER = Peer(
    name="celery",
    module=__name__,
    stores=("redis",),
    requirements=("celery[redis]==5.7.0", "redis==8.1.0"),
    setup=lambda target: [],
    workers=workers,
    config="prefork x2, worker_prefetch_multiplier=64, task_ignore_result=True; bulk = group().apply_async()",
    redis_db=11,
    slots=CONCURRENCY,
)


class CeleryClient:
    def __init__(self) -> None:
        from celery import group

        from bench.peers import celery_app

        self.app, self.group = celery_app.app, group
        self.noop, self.stamp, self.long = celery_app.noop, celery_app.stamp, celery_app.long

    def enqueue_one(self) -> None:
        self.noop.delay()

    def enqueue_bulk(self, n: int) -> None:
        self.group(self.noop.si() for _ in range(n)).apply_async()

    def seed(self, n: int) -> None:
        self.enqueue_bulk(n)

    def enqueue_stamp(self, path: str, enqueued: float) -> None:
        self.stamp.delay(path, enqueued)

    def enqueue_long(self, path: str, enqueued: float, seconds: float) -> None:
        self.long.delay(path, enqueued, seconds)

    def finished(self) -> int:
        from bench.peers.celery_app import DONE_KEY, redis_client

        return int(redis_client().get(DONE_KEY) or 0)


def client() -> CeleryClient:
    return CeleryClient()
