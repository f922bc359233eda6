"""REST API: workers and stats."""

from __future__ import annotations

import pytest

from queues import lifecycle
from queues.models import Worker

from .api import ApiClient
from .factories import make_job, start_claimed

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> ApiClient:
    return ApiClient()


def test_workers_lists_each_worker_with_its_running_jobs(api):
    lifecycle.register_worker(Worker(id="w1", hostname="h", pid=1, concurrency=2))
    make_job()
    start_claimed("w1", None, 1)
    (worker,) = api.get("/workers").json()
    assert (worker["id"], worker["status"], worker["running"]) == ("w1", "alive", 1)


def test_workers_count_the_jobs_each_has_reserved_apart_from_those_it_runs(api):
    lifecycle.register_worker(Worker(id="w1", hostname="h", pid=1, concurrency=1))
    make_job(), make_job(), make_job()
    start_claimed("w1", None, 1)
    lifecycle.claim("w1", None, 2)
    (worker,) = api.get("/workers").json()
    assert (worker["reserved"], worker["running"]) == (2, 1)


def test_a_reserved_job_reads_as_reserved(api):
    job = make_job()
    lifecycle.claim("w1", None, 1)
    assert api.get(f"/jobs/{job.pk}").json()["status"] == "reserved"


def test_workers_filter_by_status(api):
    lifecycle.register_worker(Worker(id="w1", hostname="h", pid=1, concurrency=1))
    lifecycle.stop_worker("w1")
    assert api.get("/workers", status="alive").json() == []


def test_stats_counts_jobs_by_status_and_queue(api):
    make_job()
    make_job(queue="mail")
    body = api.get("/stats").json()
    per_queue = {q["name"]: q["counts"]["queued"] for q in body["queues"]}
    assert (body["counts"]["queued"], per_queue) == (2, {"default": 1, "mail": 1})


def test_stats_counts_recent_enqueues(api):
    make_job()
    assert api.get("/stats").json()["last_minute"]["enqueued"] == 1
