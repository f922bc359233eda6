"""Key rotation: every encrypted payload stored again under the newest key, batch by batch.

``taskctl keys rotate`` calls ``rotate_keys`` once the new key is first in the key
variable of every process (so nothing new is sealed under the old one). Each batch is one
short transaction over at most ``batch`` jobs, their attempts and dead letters: an
interruption loses no more than the batch in hand, which rolls back whole, and the next run
picks up where this one stopped, because a job under the newest key (``meta["encrypted"]``)
is no longer selected. Only payload columns change: no status, attempt or lease, so
workers running the same jobs meanwhile are not disturbed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from .. import encryption
from ..encryption import META_KEY, Keys, PayloadKeyError
from ..models import Attempt, DeadLetter, Job


@dataclass
class Rotation:
    """What a run of ``rotate_keys`` did."""

    key: str
    """The id of the key everything is now encrypted with."""
    already: int = 0
    """Jobs found under the newest key when the run began: skipped."""
    rotated: int = 0
    batches: int = 0
    failed: dict[int, str] = field(default_factory=dict)
    """Jobs no configured key opens, and why: left as they are."""
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
        with transaction.atomic():
            jobs = list(
                _encrypted()
                .select_for_update()
                .filter(id__gt=after)
                .exclude(**under_newest)
                .order_by("id")[:batch]
            )
            if not jobs:
                rotation.finished = True
                break
            _reseal_batch(jobs, found, rotation)
        after = jobs[-1].pk
        rotation.batches += 1
        if progress is not None:
            progress(rotation)
    return rotation


def _encrypted() -> Any:
    return Job.objects.filter(meta__has_key=META_KEY)


def _reseal_batch(jobs: list[Job], found: Keys, rotation: Rotation) -> None:
    """Seal each job's payloads, and its attempts' and dead letters' error texts, again; a job
    with anything no key opens is left whole as it was, and counted as failed."""
    texts: dict[int, list[Attempt | DeadLetter]] = defaultdict(list)
    for model in (Attempt, DeadLetter):
        for row in model.objects.filter(job_id__in=[job.pk for job in jobs]).only(
            "id", "job_id", "error_message", "traceback"
        ):
            texts[row.job_id].append(row)
    resealed: dict[type, list[Attempt | DeadLetter]] = {Attempt: [], DeadLetter: []}
    for job in jobs:
        try:
            changes = _resealed_job(job, found)
            rows = [_resealed_row(row, found) for row in texts[job.pk]]
        except PayloadKeyError as exc:
            rotation.failed[job.pk] = str(exc)
            continue
        Job.objects.filter(pk=job.pk).update(**changes)
        for row in rows:
            resealed[type(row)].append(row)
        rotation.rotated += 1
    for model, rows in resealed.items():
        model.objects.bulk_update(rows, ["error_message", "traceback"], batch_size=500)


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
