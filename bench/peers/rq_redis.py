"""RQ with Redis: a ``worker-pool`` of two workers (one per core) using ``SimpleWorker``,
which RQ's performance notes recommend for jobs of a few milliseconds (it skips the
fork per job). Bulk enqueue is ``Queue.enqueue_many`` (one Redis pipeline).
"""

from __future__ import annotations

from bench.peers.base import Peer, Target

WORKERS = 2


def workers(target: Target) -> list[list[str]]:
    return [
        [
            f"{target.bin_dir}/rq",
            "worker-pool",
            "--url",
            target.url,
            "--num-workers",
            str(WORKERS),
            "--worker-class",
            "rq.worker.SimpleWorker",
            "--quiet",
            "default",
        ]
    ]


PEER = Peer(
    name="rq",
    module=__name__,
    stores=("redis",),
    requirements=("rq==2.12.0", "redis==8.1.0"),
    setup=lambda target: [],
    workers=workers,
    config=f"worker-pool of {WORKERS} SimpleWorkers; results kept (RQ default), which W3 counts",
    redis_db=12,
    slots=WORKERS,
)


class RqClient:
    def __init__(self) -> None:
        import os

        from redis import Redis
        from rq import Queue
        from rq.registry import FinishedJobRegistry

        from bench.peers.rq_jobs import long, noop, stamp

        self.queue = Queue("default", connection=Redis.from_url(os.environ["BENCH_URL"]))
        self.registry = FinishedJobRegistry(queue=self.queue)
        self.noop, self.stamp, self.long = noop, stamp, long

    def enqueue_one(self) -> None:
        self.queue.enqueue(self.noop)

    def enqueue_bulk(self, n: int) -> None:
        from rq import Queue

        self.queue.enqueue_many([Queue.prepare_data(self.noop) for _ in range(n)])

    def seed(self, n: int) -> None:
        self.enqueue_bulk(n)

    def enqueue_stamp(self, path: str, enqueued: float) -> None:
        self.queue.enqueue(self.stamp, path, enqueued)

    def enqueue_long(self, path: str, enqueued: float, seconds: float) -> None:
        self.queue.enqueue(self.long, path, enqueued, seconds)

    def finished(self) -> int:
        return self.registry.count


def client() -> RqClient:
    return RqClient()
