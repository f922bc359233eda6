"""Large payloads off the jobs table, in a filesystem storage: stored, fetched by the
child that runs the job, read back by every door, bounded, and deleted with their job."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from queues import lifecycle, offload, values
from queues.checks import check_payload_storage
from queues.compat import InvalidTaskError
from queues.conf import conf
from queues.exceptions import PayloadTooLarge, PayloadUnavailable, ResultTooLarge, error_path
from queues.models import Job, OffloadedPayload
from queues.runner.child import Assignment, run
from queues.states import Status

from . import tasks
from .api import ApiClient
from .console_helpers import client_for, make_viewer
from .factories import make_queue
from .payloads import BIG, SMALL, raw_row, stored_objects
from .processes import WorkerProcess, wait_until
from .test_taskctl import taskctl, taskctl_json

pytestmark = pytest.mark.django_db(transaction=True)  # deletions remove objects on commit


@pytest.fixture(autouse=True)
def payload_dir(tmp_path: Path, settings) -> Path:
    """The "payloads" storage of the site, in a folder of this test (workers get PAYLOADS_DIR)."""
    directory = tmp_path / "payloads"
    settings.STORAGES = {
        **settings.STORAGES,
        "payloads": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(directory)},
        },
    }
    return directory


def run_worker(tmp_path: Path, payload_dir: Path, **env: str) -> WorkerProcess:
    worker = WorkerProcess("--burst", log_dir=tmp_path, PAYLOADS_DIR=str(payload_dir), **env)
    assert worker.wait() == 0, worker.output()
    return worker


def test_small_arguments_stay_in_the_row():
    result = tasks.measure.enqueue(SMALL, label="small")
    assert raw_row(result.id)["args"] == [SMALL]
    assert stored_objects() == []


def test_large_arguments_go_to_the_storage_and_the_row_keeps_a_reference(payload_dir):
    result = tasks.measure.enqueue(BIG, label="big")
    row = raw_row(result.id)
    (name,) = stored_objects()
    assert row["args"] == [] and set(row["kwargs"]) == {"$offloaded"}
    assert (
        row["kwargs"]["$offloaded"]["name"] == name and row["kwargs"]["$offloaded"]["storage"] == "payloads"
    )
    assert OffloadedPayload.objects.get(name=name).job_id == int(result.id)
    assert result.args == [BIG] and result.kwargs == {"label": "big"}, "the producer sees what it sent"


def test_get_result_reads_offloaded_arguments_back():
    result = tasks.measure.enqueue(BIG, label="big")
    again = tasks.measure.get_result(result.id)
    assert again.args == [BIG] and again.kwargs == {"label": "big"}


@pytest.mark.process
def test_the_child_fetches_large_arguments_and_offloads_a_large_result(tmp_path, payload_dir):
    measured = tasks.measure.enqueue(BIG, label="big")
    made = tasks.blob.enqueue(200_000)
    worker = run_worker(tmp_path, payload_dir)
    assert tasks.measure.get_result(measured.id).return_value == {
        "label": "big",
        "length": len(BIG),
        "sha256": hashlib.sha256(BIG.encode()).hexdigest(),
        "context_saw_the_same": True,
    }, worker.output()
    assert tasks.blob.get_result(made.id).return_value == "x" * 200_000
    assert set(raw_row(made.id)["result"]) == {"$offloaded"}, "the row holds only the reference"
    assert len(stored_objects()) == 2, "the arguments of one job, the result of the other"


@pytest.mark.process
def test_a_result_shaped_like_a_reference_reads_back_as_itself(tmp_path, payload_dir):
    result = tasks.looks_like_a_reference.enqueue()
    run_worker(tmp_path, payload_dir)
    assert (
        tasks.looks_like_a_reference.get_result(result.id).return_value == tasks.looks_like_a_reference.call()
    )
    assert len(stored_objects()) == 1, "such a value is always offloaded, so a reference is never ambiguous"


def test_kwargs_shaped_like_a_reference_are_offloaded_and_called_as_given():
    kwargs = {"$offloaded": {"storage": "x", "name": "y", "size": 1}}
    job, _ = lifecycle.enqueue(values.JobSpec("tests.tasks.noop", kwargs=kwargs))
    assert offload.job_arguments(job) == ([], kwargs)
    assert len(stored_objects()) == 1


def claim_one() -> tuple[values.ClaimedJob, Assignment]:
    """The next job, claimed and started as a worker does, and the assignment its child would get."""
    (claimed,) = lifecycle.claim("test-worker", ["default"], 1)
    lifecycle.start("test-worker", [claimed.id], timezone.now())
    return claimed, Assignment(claimed, "test-worker")


def test_an_attempt_whose_arguments_are_gone_fails_clearly_and_is_retried():
    tasks.measure.enqueue(BIG)
    for name in stored_objects():
        offload._storage("payloads").delete(name)  # an object deleted by hand, or a storage outage
    report = run(claim_one()[1])
    assert not report.ok and report.retryable
    assert report.error_type == error_path(PayloadUnavailable)
    assert "cannot be read" in report.error_message


def test_a_result_past_the_maximum_kills_the_attempt_and_stores_nothing(settings):
    settings.QUEUES_PAYLOAD_MAX_BYTES = 150_000
    tasks.blob.enqueue(200_000)
    report = run(claim_one()[1])
    assert not report.ok and not report.retryable, "a larger result will not come from retrying"
    assert report.error_type == error_path(ResultTooLarge)
    assert "The result is 200,002 bytes of JSON; a job carries at most 150,000" in report.error_message
    assert stored_objects() == [] and not OffloadedPayload.objects.exists()


def test_arguments_past_the_maximum_are_refused_and_nothing_is_stored(settings):
    settings.QUEUES_PAYLOAD_MAX_BYTES = 50_000
    with pytest.raises(
        PayloadTooLarge, match=r"The arguments are 100,\d+ bytes of JSON; a job carries at most"
    ):
        lifecycle.enqueue(values.JobSpec("tests.tasks.measure", args=[BIG]))
    assert not Job.objects.exists() and stored_objects() == []


def test_a_bulk_enqueue_with_one_oversize_job_stores_nothing(settings):
    settings.QUEUES_PAYLOAD_MAX_BYTES = 150_000
    specs = [values.JobSpec("tests.tasks.measure", args=[BIG]) for _ in range(3)]
    specs.append(values.JobSpec("tests.tasks.measure", args=[BIG * 2]))
    with pytest.raises(PayloadTooLarge):
        lifecycle.enqueue_many(specs)
    assert not Job.objects.exists() and stored_objects() == []


def test_a_bulk_enqueue_that_fails_after_storing_deletes_what_it_stored():
    make_queue("default")
    specs = [values.JobSpec("tests.tasks.measure", args=[BIG]) for _ in range(3)]
    with pytest.raises(ValueError):
        lifecycle.enqueue_many(specs, batch_size=0)  # the insert fails inside the transaction
    assert not Job.objects.exists()
    assert stored_objects() == [], "objects of rows never inserted are deleted at once"


def test_an_idempotent_duplicate_stores_nothing_more():
    first, created = lifecycle.enqueue(values.JobSpec("tests.tasks.measure", args=[BIG], idempotency_key="k"))
    again, created_again = lifecycle.enqueue(
        values.JobSpec("tests.tasks.measure", args=[BIG], idempotency_key="k")
    )
    assert created and not created_again and again.id == first.id
    assert len(stored_objects()) == 1


def finished_with_offloaded_payloads(count: int = 2) -> list[int]:
    """Jobs with large arguments that succeeded with a large result, run as a worker runs them."""
    ids = [int(tasks.echo.enqueue(BIG).id) for _ in range(count)]
    for _ in ids:
        claimed, assignment = claim_one()
        report = run(assignment)
        now = timezone.now()
        lifecycle.finish(
            "test-worker", [values.Finished(claimed, "succeeded", now, now, result_json=report.result_json)]
        )
    assert Job.objects.filter(status=Status.SUCCEEDED).count() == count
    assert len(stored_objects()) == 2 * count
    return ids


def test_pruning_finished_jobs_leaves_their_objects_to_the_janitors_sweep():
    finished_with_offloaded_payloads()
    Job.objects.update(finished_at=timezone.now() - timedelta(days=8))
    assert lifecycle.prune_finished() == 2
    assert OffloadedPayload.objects.filter(job=None).count() == 4, "detached: no job holds them"
    assert offload.sweep() == 4
    assert stored_objects() == [] and not OffloadedPayload.objects.exists()


@pytest.mark.process
def test_a_running_worker_prunes_old_jobs_and_its_janitor_deletes_their_objects(tmp_path, payload_dir):
    finished_with_offloaded_payloads()
    Job.objects.update(finished_at=timezone.now() - timedelta(days=8))
    worker = WorkerProcess(log_dir=tmp_path, PAYLOADS_DIR=str(payload_dir), QUEUES_PRUNE_INTERVAL="0.5")
    try:
        wait_until(lambda: not Job.objects.exists() and stored_objects() == [])
    finally:
        assert worker.stop() == 0, worker.output()
    assert not OffloadedPayload.objects.exists()


def test_deleting_jobs_deletes_their_objects():
    first, second = finished_with_offloaded_payloads()
    assert lifecycle.delete_jobs([first]) == 1
    assert len(stored_objects()) == 2, "the other job keeps its own"
    lifecycle.delete_jobs([second])
    assert stored_objects() == [] and not OffloadedPayload.objects.exists()


def test_purging_a_queue_deletes_the_objects_of_its_waiting_jobs():
    for _ in range(3):
        tasks.measure.enqueue(BIG)
    assert len(stored_objects()) == 3
    assert lifecycle.purge_queue("default") == 3
    assert stored_objects() == []


def test_deleting_a_queue_deletes_the_objects_of_its_jobs():
    make_queue("bulky")
    for _ in range(2):
        tasks.measure.using(queue_name="bulky").enqueue(BIG)
    lifecycle.delete_queue("bulky")
    assert stored_objects() == [] and not OffloadedPayload.objects.exists()


def test_a_deletion_that_rolls_back_keeps_the_objects():
    (job_id, _) = finished_with_offloaded_payloads()
    with pytest.raises(RuntimeError), transaction.atomic():
        lifecycle.delete_jobs([job_id])
        raise RuntimeError("the caller's transaction fails")
    assert len(stored_objects()) == 4
    assert OffloadedPayload.objects.filter(job_id=job_id).count() == 2
    assert tasks.echo.get_result(str(job_id)).args == [BIG]


def test_the_sweep_finishes_a_deletion_cut_short_after_its_commit():
    (job_id, _) = finished_with_offloaded_payloads()
    # What a process killed between the deleting commit and the object deletion leaves.
    OffloadedPayload.objects.filter(job_id=job_id).update(job=None)
    Job.objects.filter(id=job_id).delete()
    assert offload.sweep() == 2
    assert len(stored_objects()) == 2 and OffloadedPayload.objects.count() == 2


def test_an_enqueue_whose_transaction_rolls_back_leaves_an_orphan_that_the_sweep_deletes():
    kept = tasks.measure.enqueue(BIG)
    with pytest.raises(RuntimeError), transaction.atomic():
        tasks.measure.enqueue(BIG)
        raise RuntimeError("the producer's transaction fails after the object was stored")
    assert len(stored_objects()) == 2, "no rollback hook exists: the object stays for now"
    assert offload.sweep() == 0, "too young: its transaction may still be open"
    later = timezone.now() + timedelta(seconds=conf.QUEUES_OFFLOAD_ORPHAN_AGE + 3600)
    assert offload.sweep(now=later) == 1
    assert stored_objects() == [OffloadedPayload.objects.get().name]
    assert tasks.measure.get_result(kept.id).args == [BIG], "the live job keeps its object"


def test_offloading_is_off_without_a_threshold(settings):
    settings.QUEUES_OFFLOAD_THRESHOLD = None
    result = tasks.measure.enqueue(BIG)
    assert raw_row(result.id)["args"] == [BIG] and stored_objects() == []


def test_the_api_shows_a_reference_in_lists_and_the_content_of_one_job():
    result = tasks.measure.enqueue(BIG, label="big")
    api = ApiClient()
    (listed,) = api.get("/jobs").json()["items"]
    (name,) = stored_objects()
    assert listed["args"] == [] and listed["kwargs"] == {}
    size = len(json.dumps({"args": [BIG], "kwargs": {"label": "big"}}))
    assert listed["offloaded"] == {
        "arguments": {"storage": "payloads", "name": name, "size": size, "error": None},
        "result": None,
    }
    shown = api.get(f"/jobs/{result.id}").json()
    assert shown["args"] == [BIG] and shown["kwargs"] == {"label": "big"}


def test_the_api_refuses_arguments_past_the_maximum_with_413(settings):
    settings.QUEUES_PAYLOAD_MAX_BYTES = 50_000
    response = ApiClient().post("/jobs", {"task": "tests.tasks.measure", "args": [BIG]})
    assert response.status_code == 413
    assert "QUEUES_PAYLOAD_MAX_BYTES" in response.json()["detail"]
    assert not Job.objects.exists() and stored_objects() == []


def test_the_console_shows_size_and_reference_and_offers_the_content():
    result = tasks.measure.enqueue(BIG, label="big")
    client = client_for(make_viewer())
    page = client.get(f"/jobs/{result.id}/").content.decode()
    (name,) = stored_objects()
    assert name in page and "97.7\xa0KB" in page and f"/jobs/{result.id}/payload/arguments" in page
    assert BIG not in page
    download = client.get(f"/jobs/{result.id}/payload/arguments")
    assert download["Content-Disposition"] == f'attachment; filename="job-{result.id}-arguments.json"'
    assert json.loads(download.content) == {"args": [BIG], "kwargs": {"label": "big"}}


def test_taskctl_shows_size_and_reference_and_prints_the_content():
    result = tasks.measure.enqueue(BIG)
    (name,) = stored_objects()
    shown = taskctl("jobs", "show", result.id)
    assert f"bytes in payloads:{name} (taskctl jobs payload {result.id} arguments)" in shown
    assert BIG not in shown
    assert taskctl_json("jobs", "payload", result.id, "arguments") == {"args": [BIG], "kwargs": {}}


def test_a_payload_storage_alias_missing_from_storages_is_a_system_check_error(settings):
    settings.QUEUES_OFFLOAD_STORAGE = "payloadz"
    (error,) = check_payload_storage(None)
    assert error.id == "queues.E003" and "'payloadz', which is not an alias of STORAGES" in error.msg
    settings.QUEUES_OFFLOAD_THRESHOLD = None
    assert check_payload_storage(None) == [], "nothing is offloaded, so no storage is needed"


def test_the_python_api_refuses_arguments_past_the_maximum_as_invalid_task_error(settings):
    settings.QUEUES_PAYLOAD_MAX_BYTES = 50_000
    with pytest.raises(InvalidTaskError, match="QUEUES_PAYLOAD_MAX_BYTES"):
        tasks.measure.enqueue(BIG)
    assert not Job.objects.exists() and stored_objects() == []


def test_the_console_offers_an_offloaded_result_for_download():
    (job_id, _) = finished_with_offloaded_payloads()
    client = client_for(make_viewer())
    page = client.get(f"/jobs/{job_id}/").content.decode()
    assert 'id="job-result-stored"' in page and f"/jobs/{job_id}/payload/result" in page
    assert json.loads(client.get(f"/jobs/{job_id}/payload/result").content) == BIG


def test_a_raw_protocol_job_keeps_its_payload_in_the_row():
    make_queue("default")
    job, _ = lifecycle.enqueue(values.JobSpec("raw", args=[BIG]))
    assert raw_row(job.id)["args"] == [BIG] and stored_objects() == []


def test_taskctl_prints_an_offloaded_result_as_the_readme_says():
    (job_id, _) = finished_with_offloaded_payloads()
    assert taskctl_json("jobs", "payload", str(job_id), "result") == BIG
    assert taskctl("jobs", "payload", str(job_id), "result").strip() == json.dumps(BIG)
