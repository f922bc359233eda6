"""``taskctl keys rotate`` (queues.lifecycle.payloads): re-encryption under the newest key."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError
from django.db import connection

from queues import encryption
from queues.models import Job
from queues.testing import run_jobs

from . import tasks
from .processes import ROOT, child_env, wait_until
from .test_encryption import KEYS, SECRET, stored_rows, taskctl

pytestmark = pytest.mark.django_db


def key_ids_stored() -> set[str]:
    """The key ids of every sealed text in the payload columns, read with a plain cursor."""
    return {match.group(1) for match in encryption.SEALED.finditer(stored_rows())}


def meta_key_ids() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT meta FROM queues_job ORDER BY id")
        return [json.loads(meta).get("encrypted") for (meta,) in cursor.fetchall()]


@dataclass(frozen=True)
class Keys:
    old: str
    new: str

    @property
    def old_id(self) -> str:
        return encryption.key_id(self.old.encode())

    @property
    def new_id(self) -> str:
        return encryption.key_id(self.new.encode())


@pytest.fixture
def keys(monkeypatch) -> Keys:
    """Five encrypted jobs under the old key (two of them finished); then new key first, old second."""
    keys = Keys(Fernet.generate_key().decode(), Fernet.generate_key().decode())
    monkeypatch.setenv(KEYS, keys.old)
    tasks.secret_sum.enqueue(1, 2, label=SECRET)
    tasks.secret_failure.enqueue(SECRET)
    run_jobs()
    for n in range(3):
        tasks.secret_sum.enqueue(n, n, label=SECRET)
    monkeypatch.setenv(KEYS, f"{keys.new},{keys.old}")
    return keys


def test_rotation_re_encrypts_every_payload_under_the_new_key_in_batches(keys, monkeypatch):
    assert key_ids_stored() == {keys.old_id}
    out, _ = taskctl("keys", "rotate", "--batch", "2")
    said = f"Re-encrypted 5 jobs under key {keys.new_id} in 3 batches; 0 were already under it."
    assert out.strip() == said
    assert key_ids_stored() == {keys.new_id}, "arguments, results, errors and tracebacks alike"
    assert meta_key_ids() == [keys.new_id] * 5
    assert SECRET not in stored_rows()


def test_after_rotation_the_old_key_can_go(keys, monkeypatch):
    taskctl("keys", "rotate")
    monkeypatch.setenv(KEYS, keys.new)
    done, failed, *waiting = Job.objects.order_by("id")
    assert tasks.secret_sum.get_result(str(done.pk)).return_value == {"sum": 3, "label": SECRET}
    assert f"cannot use {SECRET}" in tasks.secret_failure.get_result(str(failed.pk)).errors[0].traceback
    assert tasks.secret_sum.get_result(str(waiting[0].pk)).kwargs == {"label": SECRET}


def test_an_interrupted_rotation_resumes_and_skips_jobs_already_under_the_new_key(keys):
    out, _ = taskctl("keys", "rotate", "--batch", "2", "--max-batches", "1")
    assert "Re-encrypted 2 jobs" in out and "run the command again" in out
    assert meta_key_ids() == [keys.new_id] * 2 + [keys.old_id] * 3
    data = json.loads(taskctl("keys", "rotate", "--batch", "2", "--json")[0])
    assert (data["rotated"], data["already_current"], data["finished"]) == (3, 2, True)
    assert key_ids_stored() == {keys.new_id}


def test_a_second_rotation_finds_nothing_to_do(keys):
    taskctl("keys", "rotate")
    data = json.loads(taskctl("keys", "rotate", "--json")[0])
    assert (data["rotated"], data["already_current"], data["batches"]) == (0, 5, 0)


def test_jobs_no_key_opens_are_reported_and_left_as_they_are(keys, monkeypatch):
    monkeypatch.setenv(KEYS, keys.new)  # the old key removed before rotating
    data = json.loads(taskctl("keys", "rotate", "--json")[0])
    assert data["rotated"] == 0 and len(data["failed"]) == 5
    assert all(f"encrypted with key {keys.old_id}" in reason for reason in data["failed"].values())
    assert meta_key_ids() == [keys.old_id] * 5


def test_rotation_without_keys_is_a_clear_error(monkeypatch):
    monkeypatch.delenv(KEYS, raising=False)
    said = f"Cannot rotate: no encryption key: the environment variable {KEYS} is not set"
    with pytest.raises(CommandError, match=said):
        taskctl("keys", "rotate")


def test_a_batch_size_out_of_range_is_refused():
    with pytest.raises(CommandError, match=r"--batch must be 1\.\.10000"):
        taskctl("keys", "rotate", "--batch", "0")


def killed_rotation(new_id: str, **env: str) -> int:
    """Run ``taskctl keys rotate --batch 1`` in a process, kill it once it has rotated a few
    jobs, and return how many jobs are under the new key then."""
    under_new = Job.objects.filter(meta__encrypted=new_id)
    rotate = subprocess.Popen(
        [sys.executable, "manage.py", "taskctl", "keys", "rotate", "--batch", "1"],
        cwd=ROOT,
        env=child_env(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: under_new.count() >= 5)
    finally:
        rotate.kill()
        rotate.wait()
    return under_new.count()


@pytest.mark.django_db(transaction=True)
def test_a_rotation_killed_mid_run_leaves_whole_jobs_and_the_next_run_finishes(monkeypatch):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv(KEYS, old)
    tasks.secret_sum.enqueue_many([((n, n), {"label": SECRET}) for n in range(2000)])
    monkeypatch.setenv(KEYS, f"{new},{old}")
    new_id = encryption.key_id(new.encode())
    stopped_at = killed_rotation(new_id)
    assert stopped_at < 2000, "killed before it was done"
    for job in Job.objects.all():  # each job wholly under one key: its meta names the key of its args
        assert encryption.SEALED.fullmatch(job.args[0]).group(1) == job.meta["encrypted"]
    data = json.loads(taskctl("keys", "rotate", "--json")[0])
    assert (data["rotated"], data["already_current"]) == (2000 - stopped_at, stopped_at)
    assert key_ids_stored() == {new_id}
