"""Completion webhooks: enqueued with the final outcome, signed, delivered over real HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from queues import lifecycle, values, webhooks
from queues.exceptions import InvalidJob, NonRetryable
from queues.models import Job
from queues.states import Status

from .api import ApiClient, fields
from .factories import make_job, start_claimed
from .processes import WorkerProcess, wait_until

SECRET = "test-webhook-secret"


class Receiver:
    """A real HTTP server that records each POST and answers with ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        # Port 0: the kernel picks a port no other process holds.
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def secret(settings) -> str:
    settings.QUEUES_WEBHOOK_SECRET = SECRET
    return SECRET


def deliveries() -> list[Job]:
    return list(Job.objects.filter(task_path=webhooks.DELIVER_TASK))


def finish(job: Job, ok: bool = True) -> None:
    (claimed,) = [c for c in start_claimed("w", [job.queue.name], 10) if c.id == job.pk]
    now = timezone.now()
    if ok:
        outcome = values.Finished(claimed, "succeeded", now, now, result_json='"done"')
    else:
        outcome = values.Finished(claimed, "failed", now, now, error_type="E", retryable=False)
    lifecycle.finish("w", [outcome])


@pytest.mark.django_db
def test_a_callback_url_is_refused_while_no_secret_is_set():
    response = ApiClient().post("/jobs", {"task": "tests.tasks.noop", "callback_url": "http://127.0.0.1/x"})
    assert (response.status_code, fields(response)) == (400, ["callback_url"])


@pytest.mark.django_db
def test_a_callback_url_must_be_http(secret):
    with pytest.raises(InvalidJob, match="not an http"):
        webhooks.validate_callback_url("file:///etc/passwd")


@pytest.mark.django_db
def test_success_enqueues_a_delivery_with_the_outcome(secret):
    job = make_job(meta={"callback_url": "http://127.0.0.1/hook"})
    finish(job)
    (delivery,) = deliveries()
    payload = json.loads(delivery.args[1])["job"]
    assert (delivery.queue.name, payload["id"], payload["status"], payload["result"]) == (
        "webhooks",
        job.pk,
        "succeeded",
        "done",
    )


@pytest.mark.django_db
def test_death_enqueues_a_delivery(secret):
    job = make_job("tests.tasks.fail", meta={"callback_url": "http://127.0.0.1/hook"})
    finish(job, ok=False)
    assert json.loads(deliveries()[0].args[1])["job"]["status"] == Status.DEAD


@pytest.mark.django_db
def test_cancelling_enqueues_a_delivery(secret):
    job = make_job(meta={"callback_url": "http://127.0.0.1/hook"})
    lifecycle.cancel(job.pk)
    assert json.loads(deliveries()[0].args[1])["job"]["status"] == Status.CANCELLED


@pytest.mark.django_db
def test_a_retry_does_not_deliver_yet(secret):
    job = make_job("tests.tasks.fail", meta={"callback_url": "http://127.0.0.1/hook"})
    (claimed,) = start_claimed("w", None, 1)
    now = timezone.now()
    lifecycle.finish("w", [values.Finished(claimed, "failed", now, now, error_type="E")])
    assert (Job.objects.get(pk=job.pk).status, deliveries()) == (Status.SCHEDULED, [])


@pytest.mark.django_db
def test_a_job_without_a_callback_gets_no_delivery(secret):
    finish(make_job())
    assert deliveries() == []


def test_a_delivery_is_signed_with_hmac_over_time_and_body(secret, receiver):
    webhooks.deliver(receiver.url, '{"a": 1}', "42")
    ((headers, body),) = receiver.requests
    timestamp, signature = (part.split("=", 1)[1] for part in headers["X-Taskweb-Signature"].split(","))
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert (signature, headers["X-Taskweb-Delivery"]) == (expected, "42")


@pytest.mark.parametrize(("status", "error"), [(503, RuntimeError), (429, RuntimeError), (404, NonRetryable)])
def test_a_receiver_error_is_retried_unless_the_request_was_rejected(secret, status, error):
    server = Receiver(status=status)
    try:
        with pytest.raises(error, match=str(status)):
            webhooks.deliver(server.url, "{}", "1")
    finally:
        server.close()


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_job_then_delivers_its_outcome(secret, receiver, tmp_path):
    job = make_job("tests.tasks.add", args=[2, 3], meta={"callback_url": receiver.url})
    worker = WorkerProcess(log_dir=tmp_path, QUEUES_WEBHOOK_SECRET=SECRET)
    try:
        wait_until(lambda: receiver.requests, timeout=60)
    finally:
        worker.stop()
    payload = json.loads(receiver.requests[0][1])["job"]
    assert (payload["id"], payload["status"], payload["result"]) == (job.pk, "succeeded", 5)
