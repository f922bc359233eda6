"""The one place job rows are deleted, with the attempts and dead letters that hang on them.

Every caller (operator deletes, queue purge and delete, pruning) decides first which
jobs may go; this only removes them, in one transaction. A workflow step deleted before
it finished counts as cancelled first, so the steps waiting for it are cancelled with
that reason instead of waiting for good. Objects holding their offloaded payloads are
deleted once that transaction commits (``queues.offload``).
"""

from __future__ import annotations

from django.db import transaction

from .. import offload
from ..models import Attempt, DeadLetter, Job
from ..states import TERMINAL, Status
from . import dependencies


def delete_job_rows(ids: list[int], objects_at_once: bool = True) -> None:
    """Delete the jobs, and after commit their stored payloads (or, without
    ``objects_at_once``, leave those to the worker's payload janitor)."""
    with transaction.atomic():
        unfinished = Job.objects.filter(id__in=ids).exclude(status__in=TERMINAL).values_list("id", flat=True)
        dependencies.finished(dict.fromkeys(unfinished, Status.CANCELLED))
        Attempt.objects.filter(job_id__in=ids).delete()
        DeadLetter.objects.filter(job_id__in=ids).delete()
        offload.forget(ids, objects_at_once)
        Job.objects.filter(id__in=ids).delete()
