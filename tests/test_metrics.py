"""GET /metrics: Prometheus text that parses and counts what the workers really did."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from queues import lifecycle, values
from queues.models import Job, Worker
from queues.states import TERMINAL, Outcome, Status

from .factories import make_dead_job, make_job, make_queue, start_claimed
from .processes import WorkerProcess, wait_until


def scrape(client, **headers) -> dict[str, dict[tuple, float]]:
    """{sample name: {sorted label pairs: value}} from a GET /metrics."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def labels(**pairs: str) -> tuple:
    return tuple(sorted(pairs.items()))


@pytest.mark.process
@pytest.mark.django_db(transaction=True)
def test_metrics_count_the_jobs_the_workers_ran(client, tmp_path):
    make_queue("mail")
    lifecycle.enqueue_many([values.JobSpec(task_path="tests.tasks.add", args=[1, 2], queue="mail")] * 7)
    lifecycle.enqueue_many([values.JobSpec(task_path="tests.tasks.fail", queue="mail", max_attempts=2)] * 3)
    worker = WorkerProcess("--concurrency", "2", log_dir=tmp_path)
    try:
        wait_until(lambda: not Job.objects.exclude(status__in=[Status.SUCCEEDED, Status.DEAD]).exists())
        wait_until(lambda: scrape(client)["taskweb_workers_alive"][()] == 1)
    finally:
        worker.stop()
    metrics = scrape(client)
    add, fail = labels(queue="mail", task="tests.tasks.add"), labels(queue="mail", task="tests.tasks.fail")
    assert (metrics["taskweb_jobs_enqueued_total"][add], metrics["taskweb_jobs_enqueued_total"][fail]) == (
        7,
        3,
    )
    assert (metrics["taskweb_jobs_succeeded_total"][add], metrics["taskweb_jobs_failed_total"][fail]) == (
        7,
        6,
    )
    assert (metrics["taskweb_jobs_retried_total"][fail], metrics["taskweb_jobs_dead_total"][fail]) == (3, 3)
    assert metrics["taskweb_job_runtime_seconds_count"][add] == 7
    assert metrics["taskweb_job_runtime_seconds_bucket"][(("le", "+Inf"), *add)] == 7
    assert metrics["taskweb_job_runtime_seconds_count"][fail] == 6
    assert metrics["taskweb_job_runtime_seconds_sum"][add] >= 0
    assert metrics["taskweb_queue_depth"][labels(queue="mail")] == 0
    assert metrics["taskweb_workers_alive"][()] == 0


@pytest.mark.django_db
def test_histogram_buckets_are_cumulative(client):
    make_job()
    (job,) = start_claimed("w", None, 1)
    now = timezone.now()
    started = now - timedelta(seconds=0.3)
    lifecycle.finish(
        "w", [values.Finished(job=job, outcome=Outcome.SUCCEEDED, started_at=started, finished_at=now)]
    )
    buckets = scrape(client)["taskweb_job_runtime_seconds_bucket"]
    task = labels(queue="default", task="tests.tasks.noop")
    assert buckets[(("le", "0.25"), *task)] == 0
    assert buckets[(("le", "0.5"), *task)] == 1
    assert buckets[(("le", "+Inf"), *task)] == 1


@pytest.mark.django_db
def test_queue_depth_and_oldest_age_come_from_the_waiting_jobs(client):
    make_queue("reports", paused=True)
    first = make_job(queue="reports")
    make_job(queue="reports")
    Job.objects.filter(pk=first.pk).update(run_after=timezone.now() - timedelta(minutes=5))
    metrics = scrape(client)
    queue = labels(queue="reports")
    assert metrics["taskweb_queue_depth"][queue] == 2
    assert metrics["taskweb_queue_oldest_job_age_seconds"][queue] >= 300
    assert metrics["taskweb_queue_paused"][queue] == 1
    assert metrics["taskweb_queue_depth"][labels(queue="default")] == 0


@pytest.mark.django_db
def test_a_metrics_token_is_required_when_one_is_set(client, settings):
    settings.QUEUES_METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert "taskweb_workers_alive" in scrape(client, HTTP_AUTHORIZATION="Bearer s3cret")


@pytest.mark.django_db
def test_jobs_are_counted_by_queue_and_by_every_status_that_can_still_run(client):
    make_dead_job(queue="mail")  # finished: not counted
    make_job(queue="mail")
    start_claimed("w", ["mail"], 1)
    make_job(queue="mail")
    make_job(queue="mail", run_after=timezone.now() + timedelta(hours=1))
    jobs = scrape(client)["taskweb_queue_jobs"]
    unfinished = {status.value for status in Status if status not in TERMINAL}
    assert {dict(key)["status"] for key in jobs} == unfinished, "every status from the enum, no finished one"
    mail = {dict(key)["status"]: value for key, value in jobs.items() if dict(key)["queue"] == "mail"}
    assert (mail["queued"], mail["scheduled"], mail["running"]) == (1, 1, 1)
    assert not any(value for key, value in jobs.items() if dict(key)["queue"] == "default")


@pytest.mark.django_db
def test_each_queue_counts_the_live_workers_that_take_its_jobs(client):
    make_queue("mail")
    make_queue("reports")
    lifecycle.register_worker(Worker(id="any", hostname="h", pid=1, concurrency=1))
    lifecycle.register_worker(Worker(id="mailer", hostname="h", pid=2, concurrency=1, queues=["mail"]))
    lifecycle.register_worker(Worker(id="silent", hostname="h", pid=3, concurrency=1, queues=["reports"]))
    Worker.objects.filter(id="silent").update(expires_at=timezone.now() - timedelta(seconds=1))
    workers = scrape(client)["taskweb_queue_workers"]
    assert workers[labels(queue="mail")] == 2
    assert workers[labels(queue="reports")] == 1
    assert workers[labels(queue="default")] == 1
