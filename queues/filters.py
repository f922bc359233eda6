"""Which jobs and which dead letters a reader means: one filter per list, for every door.

A filter is parsed and checked once, where it comes in (a page's query string, an API
query, taskctl's options, a live socket's address), and then answers both questions a
list asks: ``queryset`` (the rows in the database) and ``matches`` (whether one row the
console's poller pushed belongs to the list). Both read the same rule per field, so a
search finds the same jobs on a reload as it counted live.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Protocol

from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from .encryption import META_KEY, PREFIX, search_note
from .exceptions import InvalidJob
from .models import QUEUE_NAME_VALIDATOR, DeadLetter, Job, Queue
from .registry import registered_tasks
from .states import Status

SEARCH_WINDOW = 50_000
"""Text search reads the newest this-many jobs: matching text inside JSON needs a scan,
and a scan over every row of a big table would take seconds (filters by queue,
status and task use indexes and reach every job)."""
MAX_TEXT = 255
MAX_SEARCH = 200


class JobRow(Protocol):
    """What ``JobFilter.matches`` reads of a job: the fields its rule names."""

    id: int
    queue: str
    task: str
    status: str
    args_text: str


class DeadLetterRow(Protocol):
    queue: str
    task: str
    error_type: str
    error_message: str


def _text(value: str | None, field: str, limit: int | None = MAX_TEXT) -> str | None:
    """None for a missing or blank value; the value once it is known to be storable text."""
    if value is None or not value.strip():
        return None
    if "\x00" in value:
        raise InvalidJob(f"The {field} filter contains a NUL character.", field)
    if limit is not None and len(value) > limit:
        raise InvalidJob(f"The {field} filter is longer than {limit} characters.", field)
    return value


def _queue(value: str | None) -> str | None:
    value = _text(value, "queue", 64)
    if value is not None and not QUEUE_NAME_VALIDATOR.regex.fullmatch(value):
        raise InvalidJob(f"{value!r} is not a queue name (1-64 of A-Z a-z 0-9 _ . -).", "queue")
    return value


def _checked(frozen: object, **values: str | None) -> None:
    """Store a frozen filter's checked values (blank ones become None)."""
    for name, value in values.items():
        object.__setattr__(frozen, name, value)


def _present(values: dict[str, object]) -> dict[str, str]:
    """The fields a filter uses, as query-string text (for links, hidden fields and sockets)."""
    return {name: str(value) for name, value in values.items() if value not in (None, False)}


@dataclass(frozen=True)
class Search:
    """Free text: ``#123`` is that job; other text is found, case-insensitively, in the
    task path or the arguments' JSON, or is the id itself when it is all digits."""

    text: str

    @property
    def job_id(self) -> int | None:
        text = self.text.strip()
        if text.startswith("#") and text[1:].isdigit():
            return int(text[1:])
        return None

    def q(self) -> Q:
        if (job_id := self.job_id) is not None:
            return Q(id=job_id)
        text = self.text.strip()
        # Encrypted arguments are ciphertext: nothing in them can be found (see search_note).
        found = Q(task_path__icontains=text) | (Q(args_text__icontains=text) & ~Q(meta__has_key=META_KEY))
        return found | Q(id=int(text)) if text.isdigit() else found

    def matches(self, job: JobRow) -> bool:
        if (job_id := self.job_id) is not None:
            return job.id == job_id
        text = self.text.strip().lower()
        in_args = PREFIX not in job.args_text and text in job.args_text.lower()
        return text == str(job.id) or text in job.task.lower() or in_args


def encrypted(jobs: QuerySet[Job]) -> QuerySet[Job]:
    return jobs.filter(meta__has_key=META_KEY)


def with_args_text(jobs: QuerySet[Job]) -> QuerySet[Job]:
    """The arguments as the database prints their JSON: what a search reads."""
    return jobs.annotate(args_text=Cast("args", TextField()))


def newest_job_id() -> int:
    return Job.objects.order_by("-id").values_list("id", flat=True).first() or 0


@dataclass(frozen=True)
class JobFilter:
    queue: str | None = None
    status: str | None = None
    task: str | None = None
    q: str | None = None

    def __post_init__(self) -> None:
        _checked(
            self,
            queue=_queue(self.queue),
            task=_text(self.task, "task"),
            q=_text(self.q, "search", MAX_SEARCH),
        )
        if self.status == "":
            object.__setattr__(self, "status", None)
        if self.status is not None and self.status not in Status.values:
            raise InvalidJob(
                f"{self.status!r} is not a status; use one of {', '.join(Status.values)}.", "status"
            )

    @classmethod
    def parse(cls, data: Mapping[str, str]) -> JobFilter:
        """From a query string or form (unknown keys are other things: a cursor, an action)."""
        return cls(**{name: data.get(name) for name in ("queue", "status", "task", "q")})

    def query(self) -> dict[str, str]:
        return _present(asdict(self))

    @property
    def search(self) -> Search | None:
        return Search(self.q) if self.q else None

    def queryset(self, jobs: QuerySet[Job]) -> QuerySet[Job]:
        if self.queue:
            jobs = jobs.filter(queue__name=self.queue)
        if self.status:
            jobs = jobs.filter(status=self.status)
        if self.task:
            jobs = jobs.filter(task_path=self.task)
        if search := self.search:
            jobs = with_args_text(jobs).filter(search.q(), id__gt=newest_job_id() - SEARCH_WINDOW)
        return jobs

    def search_note(self, jobs: QuerySet[Job]) -> str | None:
        """With a text search: how many encrypted jobs, among those the other filters and the
        search window keep, it could not look into (their arguments are ciphertext)."""
        if not self.q:
            return None
        others = replace(self, q=None).queryset(jobs).filter(id__gt=newest_job_id() - SEARCH_WINDOW)
        return search_note(encrypted(others).count())

    def lasting(self) -> JobFilter:
        """The part of this filter a job keeps matching for good: its queue, task, id and
        arguments never change, its status does (a list keeps showing a row it drew)."""
        return replace(self, status=None)

    def matches(self, job: JobRow) -> bool:
        """The same rule as ``queryset``, for one row the poller read (new rows are
        always inside the search window)."""
        if self.queue and job.queue != self.queue:
            return False
        if self.status and job.status != self.status:
            return False
        if self.task and job.task != self.task:
            return False
        search = self.search
        return search is None or search.matches(job)


@dataclass(frozen=True)
class DeadLetterFilter:
    """Open dead letters by default; ``replayed`` lists the ones already replayed instead."""

    queue: str | None = None
    task: str | None = None
    error_type: str | None = None  # the class path of the last error, e.g. builtins.KeyError
    error_message: str | None = None  # exactly: the console's groups link to one message
    replayed: bool = False

    def __post_init__(self) -> None:
        _checked(
            self,
            queue=_queue(self.queue),
            task=_text(self.task, "task"),
            error_type=_text(self.error_type, "error_type"),
            error_message=_text(self.error_message, "error_message", None),
        )

    @classmethod
    def parse(cls, data: Mapping[str, str]) -> DeadLetterFilter:
        fields = {name: data.get(name) for name in ("queue", "task", "error_type", "error_message")}
        return cls(**fields, replayed=data.get("replayed") in ("1", "true"))

    def query(self) -> dict[str, str]:
        return _present({**asdict(self), "replayed": "1" if self.replayed else None})

    def _fields(self) -> dict[str, str]:
        """Model field -> wanted value, for the fields this filter uses."""
        fields = {
            "queue_name": self.queue,
            "task_path": self.task,
            "error_type": self.error_type,
            "error_message": self.error_message,
        }
        return {name: value for name, value in fields.items() if value is not None}

    def queryset(self, letters: QuerySet[DeadLetter]) -> QuerySet[DeadLetter]:
        return letters.filter(replayed_at__isnull=not self.replayed, **self._fields())

    def matches(self, letter: DeadLetterRow) -> bool:
        """For a dead letter the poller just read (a new one, so never replayed yet)."""
        row = {
            "queue_name": letter.queue,
            "task_path": letter.task,
            "error_type": letter.error_type,
            "error_message": letter.error_message,
        }
        return not self.replayed and all(row[name] == value for name, value in self._fields().items())

    def jobs(self) -> QuerySet[Job]:
        """The dead jobs behind the matching open letters (what a replay or delete acts on)."""
        letters = self.queryset(DeadLetter.objects.all())
        return Job.objects.filter(id__in=letters.values("job_id"), status=Status.DEAD)


def queue_choices() -> list[tuple[str, str]]:
    """Every queue by name, for a select box (the console's filters, the admin's forms)."""
    return [(name, name) for name in Queue.objects.values_list("name", flat=True)]


def task_choices() -> list[tuple[str, str]]:
    return [(path, path) for path in registered_tasks()]
