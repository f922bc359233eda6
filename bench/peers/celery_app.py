"""The Celery application the Celery worker loads (``celery -A bench.peers.celery_app``)."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import redis
from celery import Celery
from celery.signals import task_success

from bench import stamps

BROKER = os.environ.get("BENCH_URL", "redis://127.0.0.1:6379/11")
DONE_KEY = "bench:succeeded"

app = Celery("bench", broker=BROKER)
app.conf.update(
    task_ignore_result=True,
    worker_prefetch_multiplier=64,
    broker_connection_retry_on_startup=True,
    task_serializer="json",
)


@cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(BROKER)


@app.task
def noop() -> None:
    pass


@app.task
def stamp(path: str, enqueued: float) -> None:
    stamps.record(path, enqueued)


@app.task
def long(path: str, enqueued: float, seconds: float) -> None:
    stamps.record(path, enqueued)
    stamps.hold(seconds)


@task_success.connect
def count_success(**kwargs: Any) -> None:
    redis_client().incr(DONE_KEY)
