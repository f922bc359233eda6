"""Key rotation: every encrypted payload stored again under the newest key, batch by batch.

``taskctl keys rotate`` calls ``rotate_keys`` once the new key is first in the key
variable of every process (so nothing new is sealed under the old one). Each batch is one
short transaction over at most ``batch`` jobs, their attempts and dead letters: an
interruption loses no more than the batch in hand, which rolls back whole, and the next run
picks up where this one stopped, because a job under the newest key (``meta["encrypted"]``)
is no longer selected. Only payload columns change: no status, attempt or lease, so
workers running the same jobs meanwhile are not disturbed.

Payloads offloaded to a storage (``queues.offload``) are re-encrypted too. An object is
never written over: its content, sealed again, goes to a new object, written before the
batch's transaction so that no lock waits on a storage; the transaction switches the row
to the new object, records it in the ledger and detaches the old one, which is deleted
after commit. A held job's (reserved or running) old object is left to the workers'
payload janitor instead, because the worker holding the job may not have read its
arguments yet. A process that dies before the commit leaves the row naming the old
object, whole, and a new object no ledger row knows, which ``offload.sweep`` deletes as it
does an enqueue's that never committed; one that dies after it leaves a detached ledger
row, which the sweep finishes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from .. import encryption, offload
from ..encryption import META_KEY, Keys, PayloadKeyError
from ..exceptions import PayloadUnavailable
from ..models import Attempt, DeadLetter, Job, OffloadedPayload
from ..offload import Replacement
from ..states import HELD

COLUMNS = {OffloadedPayload.ARGUMENTS: "kwargs", OffloadedPayload.RESULT: "result"}
"""The column of a job's row that holds the reference to each part it may offload."""


@dataclass
class Rotation:
    """What a run of ``rotate_keys`` did."""

    key: str
    """The id of the key everything is now encrypted with."""
    already: int = 0
    """Jobs found under the newest key when the run began: skipped."""
    rotated: int = 0
    objects: int = 0
    """Offloaded payloads (objects in a storage) of the rotated jobs stored again."""
    batches: int = 0
    failed: dict[int, str] = field(default_factory=dict)
    """Jobs no configured key opens (or whose offloaded payload cannot be read or written),
    and why: left as they are."""
    finished: bool = False
    """No job is left to rotate (False when the run stopped after ``max_batches``)."""


def rotate_keys(
    batch: int = 500, max_batches: int | None = None, progress: Callable[[Rotation], None] | None = None
) -> Rotation:
    """Re-encrypt every encrypted job not yet under the first key, ``batch`` jobs per transaction.

    Stops after ``max_batches`` batches when given (run it again to go on); calls ``progress``
    after each batch. Raises PayloadKeyError when the key variable is unset or malformed.
    """
    found = encryption.keys()
    under_newest = {f"meta__{META_KEY}": found.current}
    rotation = Rotation(key=found.current, already=_encrypted().filter(**under_newest).count())
    after = 0
    while max_batches is None or rotation.batches < max_batches:
        # Read without a lock: the batch's offloaded payloads are stored again first.
        jobs = list(
            _encrypted()
            .filter(id__gt=after)
            .exclude(**under_newest)
            .order_by("id")
            .only("id", "kwargs", "result")[:batch]
        )
        if not jobs:
            rotation.finished = True
            break
        with offload.Writing() as writing:  # new objects the transaction does not record go again
            ready = _store_again(jobs, found, writing, rotation)
            with transaction.atomic():
                locked = list(
                    _encrypted()
                    .select_for_update()
                    .filter(id__in=[job.pk for job in jobs if job.pk not in rotation.failed])
                    .exclude(**under_newest)  # rotated meanwhile by another run
                    .order_by("id")
                )
                _reseal_batch(locked, found, rotation, ready, writing)
        after = jobs[-1].pk
        rotation.batches += 1
        if progress is not None:
            progress(rotation)
    return rotation


def _encrypted() -> Any:
    return Job.objects.filter(meta__has_key=META_KEY)


def _store_again(
    jobs: list[Job], found: Keys, writing: offload.Writing, rotation: Rotation
) -> dict[int, dict[str, Replacement]]:
    """The offloaded payloads of ``jobs`` read, sealed again and stored as new objects, by
    job and part; a job with a payload that cannot be is counted as failed."""
    ready: dict[int, dict[str, Replacement]] = {}
    for job in jobs:
        try:
            ready[job.pk] = {
                replacement.part: replacement
                for part in COLUMNS
                if (replacement := _stored_again(job, part, found, writing)) is not None
            }
        except (PayloadKeyError, PayloadUnavailable) as exc:
            rotation.failed[job.pk] = str(exc)
    return ready


def _stored_again(job: Job, part: str, found: Keys, writing: offload.Writing) -> Replacement | None:
    """One offloaded part of ``job`` stored again under the first key; None if the row holds
    the part itself, or if its object is sealed under the first key already."""
    old = offload.reference(getattr(job, COLUMNS[part]))
    if old is None:
        return None
    text = offload.read(old)
    if encryption.under_key(text, found.current):
        return None
    return Replacement(job.pk, part, old, writing.again(old, encryption.reseal_text(text, found)))


def _replacements(
    job: Job, ready: dict[str, Replacement], found: Keys, writing: offload.Writing
) -> list[Replacement]:
    """The new objects that ``job``'s row (locked) is to name. One stored before the lock
    serves if the row still names the object it replaces; a part that came in since (a
    result) is stored again now, under the lock."""
    replacements = []
    for part, column in COLUMNS.items():
        replacement = ready.get(part)
        if replacement is None or replacement.old != offload.reference(getattr(job, column)):
            replacement = _stored_again(job, part, found, writing)
        if replacement is not None:
            replacements.append(replacement)
    return replacements


def _reseal_batch(
    jobs: list[Job],
    found: Keys,
    rotation: Rotation,
    ready: dict[int, dict[str, Replacement]],
    writing: offload.Writing,
) -> None:
    """Seal each job's payloads, and its attempts' and dead letters' error texts, again, and
    switch its row to its offloaded payloads stored again; a job with anything no key opens
    (or whose storage fails) is left whole as it was, and counted as failed."""
    texts: dict[int, list[Attempt | DeadLetter]] = defaultdict(list)
    for model in (Attempt, DeadLetter):
        for row in model.objects.filter(job_id__in=[job.pk for job in jobs]).only(
            "id", "job_id", "error_message", "traceback"
        ):
            texts[row.job_id].append(row)
    resealed: dict[type, list[Attempt | DeadLetter]] = {Attempt: [], DeadLetter: []}
    switched: dict[bool, list[Replacement]] = {True: [], False: []}  # by whether the old go at once
    for job in jobs:
        try:
            changes = _resealed_job(job, found)
            rows = [_resealed_row(row, found) for row in texts[job.pk]]
            replacements = _replacements(job, ready.get(job.pk, {}), found, writing)
        except (PayloadKeyError, PayloadUnavailable) as exc:
            rotation.failed[job.pk] = str(exc)
            continue
        for replacement in replacements:
            changes[COLUMNS[replacement.part]] = {offload.MARK: replacement.new.as_json()}
        Job.objects.filter(pk=job.pk).update(**changes)
        for row in rows:
            resealed[type(row)].append(row)
        switched[job.status not in HELD] += replacements
        rotation.rotated += 1
    for model, rows in resealed.items():
        model.objects.bulk_update(rows, ["error_message", "traceback"], batch_size=500)
    for at_once, replacements in switched.items():
        writing.replace(replacements, at_once)
        rotation.objects += len(replacements)


def _resealed_job(job: Job, found: Keys) -> dict[str, Any]:
    """The job's payload columns sealed again under the first key, and its meta saying so."""
    changes: dict[str, Any] = {"meta": {**job.meta, META_KEY: found.current}}
    if encryption.sealed_arguments(job.args, job.kwargs):
        changes["args"] = [encryption.reseal_text(job.args[0], found)]
    if encryption.is_sealed(job.result):
        changes["result"] = encryption.reseal_text(job.result, found)
    if encryption.PREFIX in job.last_error:
        changes["last_error"] = encryption.reseal_text(job.last_error, found)
    return changes


def _resealed_row(row: Attempt | DeadLetter, found: Keys) -> Attempt | DeadLetter:
    row.error_message = encryption.reseal_text(row.error_message, found)
    row.traceback = encryption.reseal_text(row.traceback, found)
    return row
