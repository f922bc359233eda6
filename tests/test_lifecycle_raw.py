"""Raw protocol jobs and Python task jobs are claimed apart."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from queues import lifecycle, values
from queues.exceptions import InvalidJob
from queues.models import Job

from .factories import make_job

pytestmark = pytest.mark.django_db


def test_a_worker_claim_never_takes_a_raw_job():
    make_job(Job.RAW_TASK, args=["payload"])
    assert lifecycle.claim("w", None, 10) == []


def test_a_raw_claim_takes_only_raw_jobs():
    make_job("tests.tasks.noop")
    raw = make_job(Job.RAW_TASK, args=["payload"])
    assert [job.id for job in lifecycle.claim("tcp", ["default"], 10, raw=True)] == [raw.id]


def test_a_raw_claim_holds_the_lease_it_asks_for():
    job = make_job(Job.RAW_TASK, args=["payload"])
    lifecycle.claim("tcp", ["default"], 1, raw=True, lease=timedelta(hours=1))
    job.refresh_from_db()
    assert job.lease_expires_at > timezone.now() + timedelta(minutes=59)


@pytest.mark.parametrize("args", [[], ["a", "b"], [{"a": 1}], ["two\nlines"]])
def test_a_raw_job_must_carry_one_line_of_text(args):
    with pytest.raises(InvalidJob, match="one line of text"):
        lifecycle.enqueue(values.JobSpec(task_path=Job.RAW_TASK, args=args))
    assert not Job.objects.exists()
