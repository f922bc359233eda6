"""Structured logs: job lines carry the job, request lines the request id, jobs the request id."""

from __future__ import annotations

import io
import json
import logging
import re
import signal
import subprocess
import sys

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from queues import logs
from queues.middleware import RequestIdMiddleware
from queues.models import Job
from queues.states import Status

from . import servers
from .brokers import LISTENING
from .factories import make_job
from .processes import ROOT, WorkerProcess, child_env, run_python, wait_until


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


def run_command(*args: str, settings: str = "tests.settings_without_logging") -> subprocess.CompletedProcess:
    """``manage.py <args>`` on the test database; stdout and stderr kept apart."""
    return run_python("manage.py", *args, timeout=120, DJANGO_SETTINGS_MODULE=settings)


@pytest.mark.process
@pytest.mark.django_db(transaction=True)
def test_runworker_in_a_project_without_logging_tells_stderr_its_start_failures_and_stop():
    make_job()
    failed = make_job("tests.tasks.fail", max_attempts=1)
    worker = run_command("runworker", "--burst", "--concurrency", "1")
    assert worker.returncode == 0, worker.stderr
    assert re.search(r" INFO queues\.worker worker \S+ started: queues=\* concurrency=1 ", worker.stderr)
    failure = (
        f"WARNING queues.worker job {failed.pk} tests.tasks.fail attempt 1 failed: builtins.RuntimeError"
    )
    assert failure in worker.stderr
    assert re.search(r" INFO queues\.worker worker \S+ stopped: 1 jobs done, 1 failed", worker.stderr)
    assert worker.stdout == ""


@pytest.mark.process
@pytest.mark.django_db(transaction=True)
def test_runworker_verbosity_0_keeps_only_warnings_and_errors():
    make_job("tests.tasks.fail", max_attempts=1)
    worker = run_command("runworker", "--burst", "--concurrency", "1", "-v", "0")
    assert worker.returncode == 0, worker.stderr
    assert " INFO " not in worker.stderr and " WARNING queues.worker job " in worker.stderr


@pytest.mark.process
@pytest.mark.django_db(transaction=True)
def test_runworker_verbosity_2_adds_a_line_per_job():
    job = make_job()
    worker = run_command("runworker", "--burst", "--concurrency", "1", "-v", "2")
    assert worker.returncode == 0, worker.stderr
    assert f"DEBUG queues.worker job {job.pk} tests.tasks.noop attempt 1 succeeded" in worker.stderr


@pytest.mark.process
@pytest.mark.django_db(transaction=True)
def test_runworker_in_a_project_with_its_own_logging_writes_each_line_once():
    worker = run_command("runworker", "--burst", "--concurrency", "1", settings="taskweb.settings")
    assert worker.returncode == 0, worker.stderr
    assert len(re.findall(r"worker \S+ started", worker.stderr)) == 1
    assert len(re.findall(r"worker \S+ stopped", worker.stderr)) == 1


@pytest.mark.process
@pytest.mark.django_db(transaction=True)
def test_runbroker_in_a_project_without_logging_tells_stderr_where_it_listens(tmp_path):
    log_path = tmp_path / "runbroker.log"
    with log_path.open("w") as log:
        runbroker = subprocess.Popen(
            [sys.executable, "manage.py", "runbroker", "--port", "0"],
            cwd=ROOT,
            env=child_env(DJANGO_SETTINGS_MODULE="tests.settings_without_logging"),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            port = servers.logged_port(runbroker, log_path, LISTENING, "runbroker")
        finally:
            runbroker.send_signal(signal.SIGINT)
            runbroker.wait(30)
    assert f" INFO queues.protocol runbroker listening on 127.0.0.1:{port} " in log_path.read_text()
