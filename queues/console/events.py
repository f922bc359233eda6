"""What the poller tells open sockets: typed updates, one kind per thing a page watches.

A tick reads the database once and produces these; ``render`` turns them into HTML
and each socket's ``Watch`` keeps the parts that concern its page. Updates carry data,
never HTML, and their topic is a value, not a string to parse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import ClassVar

from ..models import Attempt, Job
from .queries import DeadGroup, QueueSummary, WorkerSummary, alive_workers, throughput


class Kind(Enum):
    OVERVIEW = "overview"
    QUEUE = "queue"  # one queue's page; the key is its name
    WORKERS = "workers"
    JOBS = "jobs"  # the status of any job, for the rows lists show
    JOB = "job"  # one job's page; the key is its id
    DEAD = "dead"  # the dead letters


@dataclass(frozen=True)
class Topic:
    kind: Kind
    key: str | int | None = None


OVERVIEW = Topic(Kind.OVERVIEW)
WORKERS = Topic(Kind.WORKERS)
JOBS = Topic(Kind.JOBS)
DEAD = Topic(Kind.DEAD)


def queue_topic(name: str) -> Topic:
    return Topic(Kind.QUEUE, name)


def job_topic(job_id: int) -> Topic:
    return Topic(Kind.JOB, job_id)


@dataclass(frozen=True)
class OverviewUpdate:
    rows: list[QueueSummary]
    now: datetime
    workers_alive: int
    chart: dict[str, list]
    topic: ClassVar[Topic] = OVERVIEW

    @classmethod
    def read(cls, rows: list[QueueSummary], now: datetime) -> OverviewUpdate:
        """The overview as of ``now`` (a page load draws the same as a pushed update)."""
        return cls(rows, now, len(alive_workers()), throughput(None, now))


@dataclass(frozen=True)
class QueueUpdate:
    row: QueueSummary
    now: datetime
    chart: dict[str, list]

    @property
    def topic(self) -> Topic:
        return queue_topic(self.row.queue.name)

    @classmethod
    def read(cls, row: QueueSummary, now: datetime) -> QueueUpdate:
        return cls(row, now, throughput([row.queue.name], now))


@dataclass(frozen=True)
class WorkersUpdate:
    rows: list[WorkerSummary]
    topic: ClassVar[Topic] = WORKERS


@dataclass(frozen=True)
class JobRecord:
    """One changed job, as much as lists need: its status cell and their filters' rule
    (``queues.filters.JobFilter.matches``)."""

    id: int
    queue: str
    task: str
    status: str
    progress: int
    args_text: str


@dataclass(frozen=True)
class JobsUpdate:
    jobs: tuple[JobRecord, ...]
    topic: ClassVar[Topic] = JOBS


@dataclass(frozen=True)
class JobUpdate:
    """One job's page: the job (None once deleted) and every attempt so far."""

    job_id: int
    job: Job | None
    attempts: tuple[Attempt, ...]

    @property
    def topic(self) -> Topic:
        return job_topic(self.job_id)


@dataclass(frozen=True)
class DeadLetterRecord:
    """A new dead letter, for the lists' filters (``queues.filters.DeadLetterFilter.matches``)."""

    id: int
    job_id: int
    queue: str
    task: str
    error_type: str
    error_message: str


@dataclass(frozen=True)
class DeadLettersUpdate:
    groups: list[DeadGroup]
    new: tuple[DeadLetterRecord, ...]
    topic: ClassVar[Topic] = DEAD


Update = OverviewUpdate | QueueUpdate | WorkersUpdate | JobsUpdate | JobUpdate | DeadLettersUpdate
