"""Large payloads off the jobs table: arguments and results kept in a Django storage.

Arguments (args and kwargs together) or a result whose JSON is larger than
``QUEUES_OFFLOAD_THRESHOLD`` bytes are written to the ``STORAGES`` alias named by
``QUEUES_OFFLOAD_STORAGE`` (the filesystem, S3 or GCS through django-storages), and the
row keeps only a reference: ``{"$offloaded": {"storage", "name", "size"}}`` in
``kwargs`` (``args`` is then ``[]``) or in ``result``. Claims, pipes and pages stay light;
the child process that runs the job fetches its arguments and stores its result.

A reference is never ambiguous: a value whose JSON holds the key ``"$offloaded"`` is
always offloaded, so a row holding that key holds a reference.

No object outlives its job. ``OffloadedPayload`` is the ledger: its row is written in
the enqueue's transaction (or by the child, before the result is stored), detached
when the job is deleted, and removed after its object. An object written for an
enqueue that then failed is deleted at once; one whose transaction rolled back later,
or whose process died, has no ledger row, and ``sweep`` deletes it once it is older
than ``QUEUES_OFFLOAD_ORPHAN_AGE``. Names start with the hour they were written
(``<prefix>/<YYYYMMDDHH>/<uuid>.json``), so the sweep lists a few recent folders only.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django import db
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.core.signals import setting_changed
from django.db import transaction
from django.dispatch import receiver
from django.utils import timezone

from . import bounds
from .conf import conf
from .exceptions import PayloadTooLarge, PayloadUnavailable, ResultTooLarge
from .models import Job, OffloadedPayload

logger = logging.getLogger("queues.offload")
MARK = "$offloaded"
_MARK_TEXT = json.dumps(MARK)
SWEPT_HOURS = 3  # hour folders each sweep lists, the newest ``QUEUES_OFFLOAD_ORPHAN_AGE`` old


@dataclass(frozen=True, slots=True)
class Reference:
    """Where an offloaded payload is: a storage alias, an object name, its size in bytes."""

    storage: str
    name: str
    size: int

    def as_json(self) -> dict[str, Any]:
        return {"storage": self.storage, "name": self.name, "size": self.size}

    def marker(self) -> str:
        """The JSON text a row holds in place of the payload."""
        return json.dumps({MARK: self.as_json()})


@dataclass(frozen=True, slots=True)
class Replacement:
    """A new object holding one part of a job again (its content changed, e.g. re-encrypted
    under a new key), waiting to take the place of the one the row names."""

    job_id: int
    part: str  # OffloadedPayload.ARGUMENTS or RESULT
    old: Reference
    new: Reference


def reference(value: Any) -> Reference | None:
    """The reference a ``kwargs`` or ``result`` value of a row holds, or None for a plain value."""
    if not isinstance(value, dict) or MARK not in value:
        return None
    found = value[MARK]
    try:
        return Reference(str(found["storage"]), str(found["name"]), int(found["size"]))
    except (TypeError, KeyError, ValueError):
        raise PayloadUnavailable(f"The row holds a malformed payload reference: {found!r}.") from None


def size_of(text: str) -> int:
    """Bytes of JSON text as stored (UTF-8); ASCII text, what json.dumps writes, is counted free."""
    return len(text) if text.isascii() else len(text.encode())


@functools.cache
def limits() -> tuple[int | None, int]:
    """(QUEUES_OFFLOAD_THRESHOLD, QUEUES_PAYLOAD_MAX_BYTES), read once: every enqueue and
    every result asks, and a settings lookup costs more than the rest of the check."""
    return conf.QUEUES_OFFLOAD_THRESHOLD, conf.QUEUES_PAYLOAD_MAX_BYTES


@receiver(setting_changed)
def _limits_changed(setting: str, **kwargs: Any) -> None:
    if setting in ("QUEUES_OFFLOAD_THRESHOLD", "QUEUES_PAYLOAD_MAX_BYTES"):
        limits.cache_clear()


def _offloaded(size: int, text: str) -> bool:
    threshold = limits()[0]
    return (threshold is not None and size > threshold) or _MARK_TEXT in text


def _storage(alias: str) -> Storage:
    try:
        return storages[alias]
    except Exception as exc:  # InvalidStorageError, or the backend's own configuration error
        raise PayloadUnavailable(f"The payload storage {alias!r} cannot be used: {exc}") from exc


def _new_name(now: datetime) -> str:
    return f"{conf.QUEUES_OFFLOAD_PREFIX}/{now:%Y%m%d%H}/{uuid.uuid4().hex}.json"


def _save(ref: Reference, text: str) -> None:
    try:
        saved = _storage(ref.storage).save(ref.name, ContentFile(text.encode()))
    except PayloadUnavailable:
        raise
    except Exception as exc:  # any backend's failure: disk full, bucket unreachable, denied
        raise PayloadUnavailable(f"The payload could not be stored as {ref.name}: {exc}") from exc
    if saved != ref.name:  # a storage that renames (a name taken) would break the reference
        _delete(ref.storage, [saved])
        raise PayloadUnavailable(f"The storage {ref.storage!r} stored {ref.name} as {saved}.")


def read(ref: Reference) -> str:
    """The JSON text of an offloaded payload; PayloadUnavailable if it cannot be read."""
    try:
        with _storage(ref.storage).open(ref.name, "rb") as stored:
            return stored.read().decode()
    except PayloadUnavailable:
        raise
    except Exception as exc:
        raise PayloadUnavailable(f"The payload {ref.storage}:{ref.name} cannot be read: {exc}") from exc


def _delete(alias: str, names: Iterable[str]) -> list[str]:
    """Delete objects; returns the names deleted (a missing object counts as deleted)."""
    storage = _storage(alias)
    deleted = []
    for name in names:
        try:
            storage.delete(name)
        except Exception:  # the next sweep tries again; the ledger row still names it
            logger.exception("could not delete the payload %s:%s", alias, name)
        else:
            deleted.append(name)
    return deleted


# --- producers: arguments, written before the job row is ------------------------------


class Writing:
    """The objects one enqueue writes, deleted again unless their jobs were inserted.

    ``arguments`` (or ``rows``) writes a row's large arguments, before the transaction
    so that no lock is held during an upload, and returns the row with the reference.
    Then use it as a context manager around the insert: ``record`` adds the ledger rows
    of the rows inserted, in the insert's transaction; on leaving, every object not
    recorded (all of them, after an exception) is deleted.

    Key rotation writes objects the same way: ``again`` stores a changed content under a
    new name before the transaction, ``replace`` records it in the transaction that
    switches the row to it and retires the old object.
    """

    def __init__(self) -> None:
        self.written: list[Reference] = []
        self.recorded: set[str] = set()

    def __enter__(self) -> Writing:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.discard(everything=kind is not None)

    def discard(self, everything: bool = True) -> None:
        """Delete the objects written (``everything``), or those not recorded."""
        for ref in self.written:
            if everything or ref.name not in self.recorded:
                _delete(ref.storage, [ref.name])

    def arguments(self, row: dict[str, Any]) -> dict[str, Any]:
        """``row`` (column values, args and kwargs as JSON text) with its arguments
        offloaded if they are large; the same row, untouched, if they are not (or if it
        is a raw protocol job, whose payload the TCP protocol hands out as it is)."""
        args, kwargs = row["args"], row["kwargs"]
        size = size_of(args) + size_of(kwargs)
        if row["task_path"] == Job.RAW_TASK or not _offloaded(size, kwargs):
            return row
        text = f'{{"args": {args}, "kwargs": {kwargs}}}'
        ref = Reference(conf.QUEUES_OFFLOAD_STORAGE, _new_name(timezone.now()), size_of(text))
        _save(ref, text)
        self.written.append(ref)
        return {**row, "args": "[]", "kwargs": ref.marker()}

    def rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``arguments`` for each row; if one fails, the objects already written go."""
        try:
            return [self.arguments(row) for row in rows]
        except BaseException:
            self.discard()
            raise

    def record(self, rows: list[dict[str, Any]], job_ids: list[int]) -> None:
        """Write the ledger rows of the inserted ``rows`` (as ``arguments`` returned them)."""
        ledger = [
            OffloadedPayload(
                job_id=job_id,
                part=OffloadedPayload.ARGUMENTS,
                storage=ref.storage,
                name=ref.name,
                size=ref.size,
            )
            for row, job_id in zip(rows, job_ids, strict=True)
            if MARK in row["kwargs"] and (ref := reference(json.loads(row["kwargs"])))
        ]
        if ledger:  # most enqueues offload nothing: no query for them
            OffloadedPayload.objects.bulk_create(ledger)
            self.recorded.update(entry.name for entry in ledger)

    def again(self, old: Reference, text: str) -> Reference:
        """``text`` (``old``'s content, changed) stored as a new object in ``old``'s storage.

        Never written over ``old``: until the row names the new object, the old one is the
        payload, whole, whatever happens to this process."""
        new = Reference(old.storage, _new_name(timezone.now()), size_of(text))
        _save(new, text)
        self.written.append(new)
        return new

    def replace(self, replacements: list[Replacement], at_once: bool = True) -> None:
        """In the transaction that makes each job's row name its new object: the new objects'
        ledger rows, and the old objects' rows detached; the old objects are deleted once the
        transaction commits (``at_once``; by ``sweep`` if the process dies first), or left to
        the next ``sweep``."""
        if not replacements:
            return
        OffloadedPayload.objects.bulk_create(
            OffloadedPayload(
                job_id=r.job_id, part=r.part, storage=r.new.storage, name=r.new.name, size=r.new.size
            )
            for r in replacements
        )
        self.recorded.update(r.new.name for r in replacements)
        _detach(OffloadedPayload.objects.filter(name__in=[r.old.name for r in replacements]), at_once)


def check_arguments(args: str, kwargs: str) -> None:
    """Refuse arguments (JSON text) past ``QUEUES_PAYLOAD_MAX_BYTES``."""
    bounds.payload_size(size_of(args) + size_of(kwargs), limits()[1], "arguments", "args")


# --- the child that runs a job ----------------------------------------------------------


def fetched(assignment: Any) -> Any:
    """A child's assignment (``args``, ``kwargs`` and ``with_arguments``) with its arguments
    read back from the storage if its row held a reference; the same one if not."""
    if reference(assignment.kwargs) is None:
        return assignment
    return assignment.with_arguments(*arguments(assignment.args, assignment.kwargs))


def arguments(args: list[Any], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """The arguments to call a task with: fetched from the storage if the row holds a reference."""
    ref = reference(kwargs)
    if ref is None:
        return args, kwargs
    stored = json.loads(read(ref))
    return stored["args"], stored["kwargs"]


def result_text(text: str, job_id: int) -> str:
    """A task's result (JSON text) as its row will hold it: the text, or a reference to
    the object it was stored in. The ledger row comes first, so a crash in between
    leaves a row naming a missing object (harmless), never an object nobody knows."""
    size = size_of(text)
    try:
        bounds.payload_size(size, limits()[1], "result", "result")
    except PayloadTooLarge as exc:
        raise ResultTooLarge(str(exc).replace("The result are", "The result is")) from None
    if not _offloaded(size, text):
        return text
    ref = Reference(conf.QUEUES_OFFLOAD_STORAGE, _new_name(timezone.now()), size)
    row = OffloadedPayload.objects.create(
        job_id=job_id, part=OffloadedPayload.RESULT, storage=ref.storage, name=ref.name, size=size
    )
    try:
        _save(ref, text)
    except PayloadUnavailable:
        row.delete()
        raise
    return ref.marker()


# --- readers: the Tasks API, the REST API, the console, taskctl ----------------------


def job_arguments(job: Any) -> tuple[list[Any], dict[str, Any]]:
    """A job's args and kwargs, read back from the storage if they were offloaded."""
    return arguments(job.args, job.kwargs)


def job_result(job: Any) -> Any:
    """A job's result, read back from the storage if it was offloaded."""
    ref = reference(job.result)
    return job.result if ref is None else json.loads(read(ref))


def references(job: Any) -> dict[str, dict[str, Any] | None]:
    """Where a job's offloaded parts are (size and name), for pages and answers; None if in the row."""
    found = {}
    for part, value in ((OffloadedPayload.ARGUMENTS, job.kwargs), (OffloadedPayload.RESULT, job.result)):
        try:
            ref = reference(value)
        except PayloadUnavailable:
            ref = None
        found[part] = ref.as_json() if ref else None
    return found


def content(job: Any, part: str) -> str:
    """The JSON text of one part of a job (``arguments`` or ``result``), from the row or the storage."""
    if part == OffloadedPayload.ARGUMENTS:
        ref = reference(job.kwargs)
        return read(ref) if ref else json.dumps({"args": job.args, "kwargs": job.kwargs})
    ref = reference(job.result)
    return read(ref) if ref else json.dumps(job.result)


# --- deletion and the sweep -----------------------------------------------------------


def forget(job_ids: list[int], at_once: bool = True) -> None:
    """Detach the ledger rows of jobs being deleted; delete their objects after commit
    (``at_once``), or leave that to the ``Janitor``.

    Call inside the deleting transaction: a rollback keeps rows and objects; a process
    that dies after the commit leaves detached rows, which ``sweep`` finishes.
    """
    _detach(OffloadedPayload.objects.filter(job_id__in=job_ids), at_once)


def _detach(ledger: Any, at_once: bool = True) -> None:
    """Detach ``ledger``'s rows in the caller's transaction; their objects go after commit
    (``at_once``) or with the next ``sweep``, which finishes what a dead process left."""
    ids = list(ledger.values_list("id", flat=True))
    if ids:
        OffloadedPayload.objects.filter(id__in=ids).update(job=None)
        if at_once:
            transaction.on_commit(lambda: _remove(OffloadedPayload.objects.filter(id__in=ids, job=None)))


def _remove(rows: Any) -> int:
    """Delete the objects of detached ledger rows, then the rows of those deleted."""
    removed = 0
    by_storage: dict[str, list[str]] = {}
    for alias, name in rows.values_list("storage", "name"):
        by_storage.setdefault(alias, []).append(name)
    for alias, names in by_storage.items():
        try:
            deleted = _delete(alias, names)
        except PayloadUnavailable:
            logger.exception("the payload storage %r is not usable; its objects stay for now", alias)
            continue
        OffloadedPayload.objects.filter(storage=alias, name__in=deleted, job=None).delete()
        removed += len(deleted)
    return removed


def sweep(now: datetime | None = None, limit: int = 1000) -> int:
    """Delete objects no job needs: those of deleted jobs whose deletion did not finish,
    and orphans of enqueues that never committed (no ledger row) once older than
    ``QUEUES_OFFLOAD_ORPHAN_AGE``, in the hour folders of the offload storage just past
    that age. Returns how many objects were deleted."""
    removed = 0
    while True:  # pruning detaches a batch every second while it has a backlog
        batch = _remove(OffloadedPayload.objects.filter(job=None).order_by("id")[:limit])
        removed += batch
        if batch < limit:  # all done, or the storage refused some: the next round retries
            break
    if limits()[0] is None:
        return removed
    alias = conf.QUEUES_OFFLOAD_STORAGE
    newest = (now or timezone.now()) - timedelta(seconds=conf.QUEUES_OFFLOAD_ORPHAN_AGE + 3600)
    for hours in range(SWEPT_HOURS):
        folder = f"{conf.QUEUES_OFFLOAD_PREFIX}/{newest - timedelta(hours=hours):%Y%m%d%H}"
        try:
            names = [f"{folder}/{name}" for name in _storage(alias).listdir(folder)[1]]
        except FileNotFoundError:
            continue
        except Exception:  # a storage outage must not stop the worker's maintenance
            logger.exception("could not list %s in the payload storage %r", folder, alias)
            return removed
        for start in range(0, len(names), limit):
            batch = names[start : start + limit]
            known = set(OffloadedPayload.objects.filter(name__in=batch).values_list("name", flat=True))
            orphans = [name for name in batch if name not in known]
            removed += len(_delete(alias, orphans))
            if orphans:
                logger.warning("deleted %d orphaned payloads in %s", len(orphans), folder)
    return removed


class Janitor(threading.Thread):
    """A worker's thread that runs ``sweep`` every ``interval`` seconds.

    Storage calls stay off the worker's loop: a storage that hangs (an S3 outage waits
    out the client's timeouts and retries) must never hold back heartbeats, or the
    worker would be taken for lost and its jobs run twice.
    """

    def __init__(self, interval: float) -> None:
        super().__init__(name="payload-janitor", daemon=True)
        self.interval = interval
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                sweep()
            except Exception:  # the next round tries again
                logger.exception("the payload sweep failed")
            finally:
                db.connections.close_all()  # this thread's own connections

    def stop(self) -> None:
        self.stopping.set()
