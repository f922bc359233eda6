"""``taskctl keys rotate`` and payloads offloaded to a filesystem storage: every object of an
encrypted job stored again under the newest key, the old one deleted, the ledger kept whole."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.core.files.storage import storages
from django.utils import timezone

from queues import encryption, lifecycle, offload
from queues.conf import conf
from queues.models import Job, OffloadedPayload
from queues.testing import run_jobs

from . import tasks
from .payloads import BIG, raw_row, stored_objects
from .test_encryption import KEYS, SECRET, taskctl
from .test_key_rotation import Keys, killed_rotation
from .test_offload import payload_dir  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db(transaction=True)  # old objects are deleted on commit

LABEL = SECRET + BIG  # past the offload threshold, in the arguments and in the result


@pytest.fixture
def keys(monkeypatch) -> Keys:
    """Under the old key: a finished job (arguments and result offloaded), a waiting one
    (arguments offloaded) and a small one; then the new key first, the old one second."""
    keys = Keys(Fernet.generate_key().decode(), Fernet.generate_key().decode())
    monkeypatch.setenv(KEYS, keys.old)
    tasks.secret_sum.enqueue(2, 3, label=LABEL)
    run_jobs()
    tasks.secret_sum.enqueue(4, 5, label=LABEL)
    tasks.secret_sum.enqueue(6, 7, label=SECRET)
    monkeypatch.setenv(KEYS, f"{keys.new},{keys.old}")
    return keys


def text_of(name: str) -> str:
    with storages["payloads"].open(name) as stored:
        return stored.read().decode()


def stored_key_ids() -> set[str]:
    """The key ids of every sealed text in every object of the storage."""
    return {
        match.group(1) for name in stored_objects() for match in encryption.SEALED.finditer(text_of(name))
    }


def referenced() -> list[str]:
    """The objects the jobs' rows name."""
    names = []
    for job in Job.objects.all():
        for value in (job.kwargs, job.result):
            if (ref := offload.reference(value)) is not None:
                names.append(ref.name)
    return sorted(names)


def ledger() -> list[str]:
    return sorted(OffloadedPayload.objects.values_list("name", flat=True))


def rotate(*args: str) -> dict:
    return json.loads(taskctl("keys", "rotate", "--json", *args)[0])


def test_rotation_stores_each_offloaded_payload_again_under_the_new_key(keys):
    before = stored_objects()
    assert len(before) == 3 and stored_key_ids() == {keys.old_id}
    data = rotate("--batch", "2")
    assert (data["rotated"], data["objects"], data["finished"]) == (3, 3, True)
    after = stored_objects()
    assert len(after) == 3 and not set(after) & set(before), "new objects; the old ones deleted"
    assert after == referenced() == ledger(), "no orphan, none lost"
    assert stored_key_ids() == {keys.new_id}
    assert SECRET not in "".join(text_of(name) for name in after)


def test_taskctl_says_how_many_offloaded_payloads_it_stored_again(keys):
    out, _ = taskctl("keys", "rotate")
    assert "3 offloaded payloads of theirs were stored again under it." in out


def test_after_rotation_offloaded_payloads_open_with_the_new_key_alone(keys, monkeypatch):
    rotate()
    monkeypatch.setenv(KEYS, keys.new)
    done, waiting, small = Job.objects.order_by("id")
    assert tasks.secret_sum.get_result(str(done.pk)).return_value == {"sum": 5, "label": LABEL}
    assert tasks.secret_sum.get_result(str(waiting.pk)).kwargs == {"label": LABEL}
    run_jobs()
    for job, total in ((waiting, 9), (small, 13)):
        finished = tasks.secret_sum.get_result(str(job.pk))
        assert finished.status == "SUCCESSFUL", finished.errors
        assert finished.return_value["sum"] == total
    assert stored_objects() == referenced() == ledger()


def test_the_old_key_alone_no_longer_opens_what_rotation_stored(keys, monkeypatch):
    rotate()
    monkeypatch.setenv(KEYS, keys.old)
    for name in stored_objects():
        with pytest.raises(encryption.PayloadKeyError, match=f"encrypted with key {keys.new_id}"):
            encryption.opened_text(text_of(name))


def test_an_interrupted_rotation_leaves_each_job_naming_one_whole_object_and_resumes(keys):
    first = rotate("--batch", "1", "--max-batches", "1")
    assert (first["rotated"], first["objects"], first["finished"]) == (1, 2, False)
    assert stored_objects() == referenced() == ledger()
    assert stored_key_ids() == {keys.old_id, keys.new_id}
    rest = rotate("--batch", "1")
    assert (rest["rotated"], rest["objects"], rest["already_current"]) == (2, 1, 1)
    assert stored_objects() == referenced() == ledger()
    assert stored_key_ids() == {keys.new_id}


def test_a_job_whose_offloaded_payload_no_key_opens_is_left_as_it_was(keys, monkeypatch):
    before = {name: text_of(name) for name in stored_objects()}
    monkeypatch.setenv(KEYS, keys.new)  # the old key removed before rotating
    data = rotate()
    assert data["rotated"] == 0 and len(data["failed"]) == 3
    assert all(f"encrypted with key {keys.old_id}" in reason for reason in data["failed"].values())
    assert {name: text_of(name) for name in stored_objects()} == before, "nothing written, nothing deleted"
    assert sorted(before) == referenced() == ledger()


def test_a_job_whose_offloaded_payload_cannot_be_read_is_reported_and_left_as_it_was(keys):
    waiting = Job.objects.order_by("id")[1]
    missing = offload.reference(waiting.kwargs).name
    storages["payloads"].delete(missing)
    data = rotate()
    assert data["rotated"] == 2 and list(data["failed"]) == [str(waiting.pk)]
    assert f"The payload payloads:{missing} cannot be read" in data["failed"][str(waiting.pk)]
    assert raw_row(waiting.pk)["kwargs"]["$offloaded"]["name"] == missing
    assert Job.objects.get(pk=waiting.pk).meta["encrypted"] == keys.old_id
    assert len(stored_objects()) == 2 and stored_key_ids() == {keys.new_id}


def test_a_payload_offloaded_in_the_clear_is_not_stored_again(keys):
    plain = tasks.echo.enqueue(BIG)
    name = offload.reference(raw_row(plain.id)["kwargs"]).name
    rotate()
    assert name in stored_objects() and raw_row(plain.id)["kwargs"]["$offloaded"]["name"] == name


def test_a_held_jobs_old_object_stays_for_its_worker_until_the_janitor_takes_it(keys):
    (claimed,) = lifecycle.claim("w1", ["default"], 1)  # the waiting job: its worker has the old reference
    old = offload.reference(claimed.kwargs)
    data = rotate()
    assert (data["rotated"], data["objects"]) == (3, 3)
    assert offload.reference(raw_row(claimed.id)["kwargs"]) != old
    stored = json.loads(offload.read(old))
    assert encryption.open_arguments(stored["args"], stored["kwargs"])[1] == {"label": LABEL}
    assert OffloadedPayload.objects.get(name=old.name).job_id is None, "detached: no job needs it"
    offload.sweep()
    assert old.name not in stored_objects()
    assert stored_objects() == referenced() == ledger() and stored_key_ids() == {keys.new_id}


@pytest.mark.process
def test_a_rotation_killed_mid_run_loses_no_payload_and_the_sweep_takes_what_it_left(monkeypatch, settings):
    settings.QUEUES_OFFLOAD_THRESHOLD = 64
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv(KEYS, old)
    count = 300
    tasks.secret_sum.enqueue_many([((n, n), {"label": SECRET * 8}) for n in range(count)])
    assert len(stored_objects()) == count
    monkeypatch.setenv(KEYS, f"{new},{old}")
    new_id = encryption.key_id(new.encode())
    stopped_at = killed_rotation(new_id, PAYLOADS_DIR=storages["payloads"].location)
    assert stopped_at < count, "killed before it was done"
    for job in Job.objects.all():  # each row names an object that is there, wholly under its key
        text = text_of(offload.reference(job.kwargs).name)
        assert {m.group(1) for m in encryption.SEALED.finditer(text)} == {job.meta["encrypted"]}
        stored = json.loads(text)
        assert encryption.open_arguments(stored["args"], stored["kwargs"])[1] == {"label": SECRET * 8}
    data = json.loads(taskctl("keys", "rotate", "--json")[0])
    assert (data["rotated"], data["objects"]) == (count - stopped_at, count - stopped_at)
    later = timezone.now() + timedelta(seconds=conf.QUEUES_OFFLOAD_ORPHAN_AGE + 3600)
    offload.sweep(now=later)  # what a worker's janitor does: objects no ledger row knows
    assert stored_objects() == referenced() == ledger()
    assert len(stored_objects()) == count and stored_key_ids() == {new_id}
