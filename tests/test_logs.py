"""Structured logs: job lines carry the job, request lines the request id, jobs the request id."""

from __future__ import annotations

import io
import json
import logging

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from queues import logs
from queues.middleware import RequestIdMiddleware
from queues.models import Job
from queues.states import Status

from .factories import make_job
from .processes import WorkerProcess, wait_until


def json_lines(text: str) -> list[dict]:
    """Every line parsed as JSON: a line that is not JSON fails the test."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.fixture
def captured() -> io.StringIO:
    """What the project's JSON handler (formatter and context filter) writes, in memory."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


@pytest.mark.process
@pytest.mark.django_db(transaction=True)
def test_worker_log_lines_are_json_with_the_job_fields(tmp_path):
    logged = make_job("tests.tasks.log_line", queue="default")
    failed = make_job("tests.tasks.fail", max_attempts=1)
    worker = WorkerProcess("--concurrency", "1", log_dir=tmp_path, LOG_FORMAT="json")
    try:
        wait_until(lambda: not Job.objects.exclude(status__in=[Status.SUCCEEDED, Status.DEAD]).exists())
    finally:
        worker.stop()
    lines = json_lines(worker.output())
    worker_id = Job.objects.get(pk=logged.pk).attempt_history.get().worker_id
    task_line = next(line for line in lines if line["message"] == "hello from the task")
    assert {k: task_line[k] for k in ("job_id", "queue", "task", "attempt", "worker", "level", "logger")} == {
        "job_id": logged.pk,
        "queue": "default",
        "task": "tests.tasks.log_line",
        "attempt": 1,
        "worker": worker_id,
        "level": "INFO",
        "logger": "tests.tasks",
    }
    failure = next(line for line in lines if line.get("job_id") == failed.pk and line["level"] == "WARNING")
    assert (failure["task"], failure["attempt"], failure["worker"]) == ("tests.tasks.fail", 1, worker_id)
    assert all(line.get("worker") == worker_id for line in lines if line["logger"] == "queues.worker")


@pytest.mark.django_db
def test_request_lines_carry_a_request_id_that_the_response_returns(client, captured):
    response = client.get("/health")
    (line,) = [line for line in json_lines(captured.getvalue()) if line["logger"] == "taskweb.request"]
    assert line["request_id"] == response["X-Request-ID"]
    assert line["message"].startswith("GET /health 200 ")


@pytest.mark.parametrize(
    ("sent", "kept"), [("edge-7f3a.1", True), ("bad id\nwith newline", False), ("x" * 129, False)]
)
@pytest.mark.django_db
def test_an_incoming_request_id_is_kept_only_when_it_is_plausible(client, sent, kept):
    response = client.get("/health", HTTP_X_REQUEST_ID=sent)
    assert (response["X-Request-ID"] == sent) is kept
    assert 1 <= len(response["X-Request-ID"]) <= 128


@pytest.mark.django_db
def test_a_job_enqueued_during_a_request_carries_its_request_id():
    enqueued: list[Job] = []

    def view(request):
        enqueued.append(make_job(meta={"source": "view"}))
        return HttpResponse("ok")

    response = RequestIdMiddleware(view)(RequestFactory().post("/anything", HTTP_X_REQUEST_ID="req-42"))
    job = Job.objects.get(pk=enqueued[0].pk)
    assert response["X-Request-ID"] == "req-42"
    assert job.meta == {"request_id": "req-42", "source": "view"}


@pytest.mark.django_db
def test_a_job_enqueued_outside_a_request_has_no_request_id():
    assert "request_id" not in make_job().meta


def test_plain_lines_end_with_the_context_as_key_value_pairs():
    record = logging.LogRecord("queues.worker", logging.INFO, __file__, 1, "job done", None, None)
    logs.ContextFilter().filter(record)
    with logs.bind(job_id=5, queue="mail"):
        bound = logging.LogRecord("queues.worker", logging.INFO, __file__, 1, "job done", None, None)
        logs.ContextFilter().filter(bound)
    assert logs.PlainFormatter("%(message)s").format(record) == "job done"
    assert logs.PlainFormatter("%(message)s").format(bound) == "job done [job_id=5 queue=mail]"
