"""REST API: dead letters listed, replayed one by one or by filter, deleted."""

from __future__ import annotations

import pytest
from django.utils import timezone

from queues import lifecycle, values
from queues.models import DeadLetter, Job
from queues.states import Status

from .api import ApiClient
from .factories import make_job, start_claimed

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> ApiClient:
    return ApiClient()


def kill(task: str = "tests.tasks.fail", queue: str = "default", error_type: str = "RuntimeError") -> Job:
    job = make_job(task, queue=queue)
    (claimed,) = [c for c in start_claimed("w", [queue], 10) if c.id == job.pk]
    now = timezone.now()
    lifecycle.finish(
        "w", [values.Finished(claimed, "failed", now, now, error_type=error_type, retryable=False)]
    )
    return job


def letter_of(job: Job) -> DeadLetter:
    return DeadLetter.objects.get(job=job)


def test_list_shows_open_dead_letters_with_their_error(api):
    job = kill()
    (item,) = api.get("/dead-letters").json()["items"]
    assert (item["job_id"], item["error_type"]) == (job.pk, "RuntimeError")


def test_list_filters_by_error_type(api):
    kill(error_type="KeyError")
    wanted = kill(error_type="ValueError")
    items = api.get("/dead-letters", error_type="ValueError").json()["items"]
    assert [item["job_id"] for item in items] == [wanted.pk]


def test_replay_one_requeues_the_job_and_records_who(api):
    job = kill()
    response = api.post(f"/dead-letters/{letter_of(job).pk}/replay")
    assert response.json()["status"] == Status.QUEUED
    assert letter_of(job).replayed_by == "token:tests"


def test_replaying_a_job_that_is_live_again_is_409(api):
    job = kill()
    lifecycle.replay(job.pk)
    assert api.post(f"/dead-letters/{letter_of(job).pk}/replay").status_code == 409


def test_replay_of_an_unknown_dead_letter_is_404(api):
    assert api.post("/dead-letters/99999/replay").status_code == 404


def test_replay_matching_replays_only_the_matches(api):
    make_job(queue="mail")
    kept = kill(queue="default")
    replayed = kill(queue="mail")
    assert api.post("/dead-letters/replay", {"queue": "mail"}).json() == {"count": 1}
    assert (Job.objects.get(pk=replayed.pk).status, Job.objects.get(pk=kept.pk).status) == ("queued", "dead")


def test_replay_matching_with_an_unknown_filter_field_is_400(api):
    kill()
    assert api.post("/dead-letters/replay", {"colour": "red"}).status_code == 400
    assert Job.objects.get().status == Status.DEAD


def test_delete_discards_the_dead_job(api):
    job = kill()
    assert api.delete(f"/dead-letters/{letter_of(job).pk}").status_code == 204
    assert not Job.objects.filter(pk=job.pk).exists()


def test_delete_of_a_replayed_job_is_409_and_keeps_it(api):
    job = kill()
    lifecycle.replay(job.pk)
    assert api.delete(f"/dead-letters/{letter_of(job).pk}").status_code == 409
    assert Job.objects.filter(pk=job.pk).exists()
