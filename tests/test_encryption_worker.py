"""Encrypted jobs on real ``runworker`` processes: run end to end, and a key that does not fit."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from queues.encryption import PayloadKeyError
from queues.exceptions import error_path
from queues.models import Job, Worker, WorkerStatus
from queues.states import Status

from . import tasks
from .processes import WorkerProcess, wait_until
from .test_encryption import KEYS, SECRET, stored_rows

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]


def worker(tmp_path: Path, *args: str, **env: str) -> WorkerProcess:
    return WorkerProcess(*args, log_dir=tmp_path, **env)


def test_an_encrypted_job_runs_on_a_worker_and_returns_its_result(tmp_path, monkeypatch):
    key = Fernet.generate_key().decode()
    monkeypatch.setenv(KEYS, key)
    result = tasks.secret_sum.enqueue(20, 22, label=SECRET)
    process = worker(tmp_path, "--burst")
    assert process.wait() == 0, process.output()
    assert tasks.secret_sum.get_result(result.id).return_value == {"sum": 42, "label": SECRET}
    assert SECRET not in stored_rows()
    assert SECRET not in process.output(), "the worker logs no plaintext either"


def test_a_worker_with_the_wrong_key_fails_the_job_clearly_and_keeps_working(tmp_path, monkeypatch):
    monkeypatch.setenv(KEYS, Fernet.generate_key().decode())
    sealed = tasks.secret_sum.enqueue(1, 2)
    process = worker(tmp_path, **{KEYS: Fernet.generate_key().decode()})
    try:
        wait_until(lambda: Job.objects.get(pk=sealed.id).status == Status.DEAD)
        plain = tasks.add.enqueue(1, 1)
        wait_until(lambda: Job.objects.get(pk=plain.id).status == Status.SUCCEEDED)
        assert Worker.objects.get().status == WorkerStatus.ALIVE, "the same worker, still running"
    finally:
        assert process.stop() == 0, process.output()
    job = Job.objects.get(pk=sealed.id)
    attempt = job.attempt_history.get()
    assert job.attempts == 1 and attempt.error_type == error_path(PayloadKeyError)
    assert "was encrypted with key" in attempt.error_message
    assert job.dead_letters.get().error_type == error_path(PayloadKeyError)


def test_a_worker_without_keys_fails_encrypted_jobs_and_runs_the_others(tmp_path, monkeypatch):
    monkeypatch.setenv(KEYS, Fernet.generate_key().decode())
    sealed = tasks.secret_sum.enqueue(1, 2)
    plain = tasks.add.enqueue(2, 2)
    monkeypatch.delenv(KEYS)
    process = worker(tmp_path, "--burst")
    assert process.wait() == 0, process.output()
    attempt = Job.objects.get(pk=sealed.id).attempt_history.get()
    assert attempt.error_type == error_path(PayloadKeyError)
    assert f"{KEYS} is not set" in attempt.error_message
    assert Job.objects.get(pk=plain.id).status == Status.SUCCEEDED
