"""What the orchestrator knows about a system under test, and what its driver must offer.

The orchestrator runs in the project's virtualenv; each system's client runs in a
driver process inside that system's own virtualenv (``python -m bench.drive``), so
nothing here may import a queue library.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Target:
    """One system on one store: where its database lives and which Python runs it."""

    store: str  # "sqlite", "postgres" or "redis"
    url: str  # DATABASE_URL-style for databases, redis://… for Redis
    python: str
    bin_dir: str


Commands = Callable[[Target], list[list[str]]]


@dataclass(frozen=True)
class Peer:
    name: str
    module: str  # the module with PEER and client(), run by bench.drive
    stores: tuple[str, ...]
    requirements: tuple[str, ...]  # pinned; empty means the project's own virtualenv
    setup: Commands  # run once on an empty database, before it is cloned per workload
    workers: Commands  # started together; stopped with SIGTERM to each process group
    config: str  # the settings that go with the commands, as the system's docs advise
    env: dict[str, str] = field(default_factory=dict)
    url_var: str = "BENCH_URL"  # the environment variable its processes read the store from
    redis_db: int | None = None  # the Redis database number it may flush, if Redis-backed
    slots: int | None = None  # jobs its worker commands run at once; None: no cap (W6 sizes on it)


class Client(Protocol):
    """Producer side of one system, used by the driver process."""

    #: None when the system has no bulk enqueue API (W2 is then reported as n/a).
    enqueue_bulk: Callable[[int], None] | None

    def enqueue_one(self) -> None: ...

    def seed(self, n: int) -> None:
        """Queue ``n`` no-op jobs as fast as the system allows (not timed)."""

    def enqueue_stamp(self, path: str, enqueued: float) -> None: ...

    def enqueue_long(self, path: str, enqueued: float, seconds: float) -> None:
        """A job that stamps its start like ``enqueue_stamp``, then holds its slot ``seconds``."""

    def finished(self) -> int:
        """How many jobs have run to success so far."""
