"""REST API: queues with counts, create, update limits, pause, resume, purge, delete."""

from __future__ import annotations

import pytest

from queues.models import Job, Queue

from .api import ApiClient, fields
from .factories import make_job, make_queue, start_claimed

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> ApiClient:
    return ApiClient()


def test_list_shows_each_queue_with_counts_by_status(api):
    make_job()
    make_job()
    (default,) = [q for q in api.get("/queues").json() if q["name"] == "default"]
    assert (default["counts"]["queued"], default["counts"]["running"]) == (2, 0)


def test_create_answers_201_with_the_limits(api):
    response = api.post("/queues", {"name": "mail", "concurrency": 2, "rate_limit": 5.5, "retention": 60})
    assert response.status_code == 201
    queue = Queue.objects.get(name="mail")
    assert (queue.concurrency, queue.rate_limit, queue.retention.total_seconds()) == (2, 5.5, 60)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "bad name"}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": "ok", "concurrency": 0}, "concurrency"),
        ({"name": "ok", "rate_limit": -1}, "rate_limit"),
        ({"name": "ok", "speed": 1}, "speed"),
    ],
)
def test_create_with_bad_input_is_400_naming_the_field(api, body, field):
    response = api.post("/queues", body)
    assert (response.status_code, field in fields(response)) == (400, True)
    assert not Queue.objects.filter(name="ok").exists()


def test_creating_an_existing_queue_is_409(api):
    assert api.post("/queues", {"name": "default"}).status_code == 409


def test_get_an_unknown_queue_is_404(api):
    assert api.get("/queues/nope").status_code == 404


def test_update_changes_only_the_given_limits(api):
    make_queue("mail", concurrency=3, timeout=30)
    api.patch("/queues/mail", {"rate_limit": 2})
    queue = Queue.objects.get(name="mail")
    assert (queue.concurrency, queue.rate_limit, queue.timeout) == (3, 2, 30)


def test_update_with_null_clears_the_concurrency_limit(api):
    make_queue("mail", concurrency=3)
    assert api.patch("/queues/mail", {"concurrency": None}).json()["concurrency"] is None


def test_update_with_a_null_timeout_puts_the_default_back(api):
    make_queue("mail", timeout=30)
    assert api.patch("/queues/mail", {"timeout": None}).json()["timeout"] == 300


def test_update_of_an_unknown_queue_is_404(api):
    assert api.patch("/queues/nope", {"timeout": 5}).status_code == 404


def test_pause_stops_workers_claiming(api):
    make_job()
    api.post("/queues/default/pause")
    assert start_claimed("w", None, 1) == []


def test_resume_lets_workers_claim_again(api):
    make_job()
    api.post("/queues/default/pause")
    api.post("/queues/default/resume")
    assert len(start_claimed("w", None, 1)) == 1


def test_purge_deletes_waiting_jobs_and_says_how_many(api):
    make_job()
    make_job()
    assert api.post("/queues/default/purge").json() == {"count": 2}
    assert not Job.objects.exists()


def test_delete_removes_the_queue_and_its_jobs(api):
    make_job(queue="mail")
    assert api.delete("/queues/mail").json() == {"count": 1}
    assert not Queue.objects.filter(name="mail").exists()


def test_delete_is_409_while_a_job_runs_and_changes_nothing(api):
    make_job(queue="mail")
    start_claimed("w", ["mail"], 1)
    assert api.delete("/queues/mail").status_code == 409
    assert Job.objects.filter(queue__name="mail").count() == 1


def test_the_default_queue_cannot_be_deleted(api):
    assert api.delete("/queues/default").status_code == 409


def test_create_with_null_limits_and_defaults_takes_the_defaults(api):
    body = {"name": "mail", "concurrency": None, "max_attempts": None, "timeout": None, "retention": None}
    response = api.post("/queues", body)
    assert response.status_code == 201
    assert (response.json()["max_attempts"], response.json()["retention"]) == (4, 7 * 86400)


@pytest.mark.parametrize("setting", [{"concurrency": True}, {"rate_limit": "5"}, {"max_attempts": "3"}])
def test_a_setting_that_is_not_a_number_in_its_range_is_400(api, setting):
    response = api.post("/queues", {"name": "mail", **setting})
    assert (response.status_code, fields(response)) == (400, list(setting))
    assert not Queue.objects.filter(name="mail").exists()
