"""Encrypted payloads over the TCP protocol, against real ``runbroker`` processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from cryptography.fernet import Fernet

from queues.encryption import HIDDEN, PayloadKeyError
from queues.exceptions import error_path
from queues.models import Job
from queues.states import Status

from .brokers import BrokerProcess, LineClient
from .console_helpers import make_user
from .factories import make_job, make_queue, make_token
from .test_encryption import KEYS, SECRET, stored_rows

pytestmark = pytest.mark.django_db(transaction=True)

WORKER_PERMS = ("view_job", "add_job", "change_job")
"""What a TCP client needs to enqueue and work jobs."""


@pytest.fixture
def broker(monkeypatch, tmp_path) -> Iterator[Callable[..., BrokerProcess]]:
    """Start a runbroker with the key variable as the test sets it now (it inherits the environment)."""
    started: list[BrokerProcess] = []

    def start(*args: str) -> BrokerProcess:
        started.append(BrokerProcess(*args, log_dir=tmp_path))
        return started[-1]

    monkeypatch.setenv(KEYS, Fernet.generate_key().decode())
    make_queue("vault", encrypt=True)
    yield start
    for process in started:
        process.stop()


def authenticated(process: BrokerProcess, *perms: str) -> LineClient:
    user = make_user(f"client-{len(perms)}", perms=perms)
    client = process.client()
    assert client(f"AUTH {make_token(user=user, scope='operate')}") == "OK"
    return client


def test_a_payload_enqueued_over_tcp_is_stored_encrypted_and_dequeued_in_the_clear(broker):
    client = broker().client()
    job_id = client(f"ENQUEUE vault {SECRET}").split()[1]
    assert SECRET not in stored_rows()
    assert client("DEQUEUE vault") == f"JOB {job_id} {SECRET}"
    assert client(f"NACK {job_id} no luck with {SECRET}") == "OK"
    assert SECRET not in stored_rows(), "a NACK reason about an encrypted job is encrypted too"


def test_a_client_without_the_permission_may_not_take_jobs_of_an_encrypting_queue(broker):
    process = broker("--auth")
    make_job(Job.RAW_TASK, queue="vault", args=[SECRET])
    reply = authenticated(process, *WORKER_PERMS)("DEQUEUE vault")
    said = "queue vault stores encrypted payloads; taking its jobs needs the queues.view_payloads permission"
    assert reply == f"ERR {said}"
    assert Job.objects.get().status == Status.QUEUED, "nothing was claimed"


def test_a_client_with_the_permission_takes_them_in_the_clear(broker):
    process = broker("--auth")
    job = make_job(Job.RAW_TASK, queue="vault", args=[SECRET])
    client = authenticated(process, *WORKER_PERMS, "view_payloads")
    assert client("DEQUEUE vault") == f"JOB {job.pk} {SECRET}"


def test_a_stray_encrypted_job_shows_as_encrypted_to_a_client_without_the_permission(broker):
    process = broker("--auth")
    job = make_job(Job.RAW_TASK, queue="vault", args=[SECRET])
    Job.objects.filter(pk=job.pk).update(queue=make_queue("plain"))  # its queue no longer encrypts
    assert authenticated(process, *WORKER_PERMS)("DEQUEUE plain") == f"JOB {job.pk} {HIDDEN}"


def test_a_payload_the_servers_keys_cannot_open_fails_its_job_for_good(broker, monkeypatch):
    job = make_job(Job.RAW_TASK, queue="vault", args=[SECRET])
    monkeypatch.setenv(KEYS, Fernet.generate_key().decode())
    reply = broker().client()("DEQUEUE vault")
    assert reply.startswith(f"ERR job {job.pk} cannot be decrypted (the payload was encrypted with key")
    job.refresh_from_db()
    assert job.status == Status.DEAD
    assert job.attempt_history.get().error_type == error_path(PayloadKeyError)
