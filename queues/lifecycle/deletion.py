"""The one place job rows are deleted, with the attempts and dead letters that hang on them.

Every caller (operator deletes, queue purge and delete, pruning) decides first which
jobs may go; this only removes them, in one transaction. A workflow step deleted before
it finished counts as cancelled first, so the steps waiting for it are cancelled with
that reason instead of waiting for good.
"""

from __future__ import annotations

from django.db import transaction

from ..models import Attempt, DeadLetter, Job
from ..states import TERMINAL, Status
from . import dependencies


def delete_job_rows(ids: list[int]) -> None:
    with transaction.atomic():
        unfinished = Job.objects.filter(id__in=ids).exclude(status__in=TERMINAL).values_list("id", flat=True)
        dependencies.finished(dict.fromkeys(unfinished, Status.CANCELLED))
        Attempt.objects.filter(job_id__in=ids).delete()
        DeadLetter.objects.filter(job_id__in=ids).delete()
        Job.objects.filter(id__in=ids).delete()
