"""Large payloads of encrypted jobs: sealed first, offloaded after; shown only to those who may see them.

Jobs run here in the test's process through the worker's own execution path
(``queues.testing.run_jobs``).
"""

from __future__ import annotations

import json

import pytest
from django.core.files.storage import storages
from django.core.management import CommandError

from queues import encryption
from queues.encryption import HIDDEN
from queues.models import Job
from queues.testing import run_jobs

from . import tasks
from .api import ApiClient
from .console_helpers import client_for, make_viewer
from .factories import make_token
from .payloads import BIG, raw_row, stored_objects
from .test_encryption import SECRET, grant_payloads, key  # noqa: F401 (the fixture)
from .test_offload import payload_dir  # noqa: F401 (the fixture)
from .test_taskctl import taskctl, taskctl_json

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("key")]  # a key in the environment

LABEL = SECRET + BIG  # past the offload threshold, in the arguments and in the result


def finished_large_secret_job() -> int:
    """An encrypted job whose arguments and result were both too large for the row."""
    result = tasks.secret_sum.enqueue(2, 3, label=LABEL)
    run_jobs()
    assert Job.objects.get(pk=result.id).status == "succeeded"
    return int(result.id)


def stored_texts() -> str:
    with_storage = storages["payloads"]
    return "\n".join(with_storage.open(name).read().decode() for name in stored_objects())


def test_an_encrypted_jobs_large_arguments_are_sealed_before_they_are_offloaded():
    result = tasks.secret_sum.enqueue(2, 3, label=LABEL)
    row = raw_row(result.id)
    (name,) = stored_objects()
    assert row["args"] == [] and row["kwargs"]["$offloaded"]["name"] == name
    stored = json.loads(stored_texts())
    assert stored["kwargs"] == {} and encryption.is_sealed(stored["args"][0]), "the storage holds sealed text"
    assert SECRET not in stored_texts()
    assert tasks.secret_sum.get_result(result.id).kwargs == {"label": LABEL}


def test_the_child_fetches_then_opens_and_seals_a_large_result_before_offloading_it():
    job_id = finished_large_secret_job()
    assert set(raw_row(job_id)["result"]) == {"$offloaded"}
    assert len(stored_objects()) == 2 and SECRET not in stored_texts()
    assert tasks.secret_sum.get_result(job_id).return_value == {"sum": 5, "label": LABEL}


def test_the_api_shows_offloaded_encrypted_payloads_as_encrypted_without_the_permission():
    job_id = finished_large_secret_job()
    job = ApiClient(make_token("viewer", user=make_viewer())).get(f"/jobs/{job_id}").json()
    assert (job["args"], job["kwargs"], job["result"]) == (HIDDEN, HIDDEN, HIDDEN)
    assert job["offloaded"]["arguments"]["name"] in stored_objects()


def test_the_api_shows_offloaded_encrypted_payloads_to_a_caller_with_the_permission():
    job_id = finished_large_secret_job()
    api = ApiClient(make_token("reader", user=grant_payloads("reader"), scope="read"))
    job = api.get(f"/jobs/{job_id}").json()
    assert (job["args"], job["kwargs"]) == ([2, 3], {"label": LABEL})
    assert job["result"] == {"sum": 5, "label": LABEL}


def test_the_console_offers_no_download_of_encrypted_payloads_without_the_permission():
    job_id = finished_large_secret_job()
    client = client_for(make_viewer())
    page = client.get(f"/jobs/{job_id}/").content.decode()
    assert 'id="job-args-stored"' in page and 'id="job-result-stored"' in page and HIDDEN in page
    assert f"/jobs/{job_id}/payload/" not in page and SECRET not in page
    for part in ("arguments", "result"):
        assert client.get(f"/jobs/{job_id}/payload/{part}").status_code == 403


def test_the_console_downloads_encrypted_payloads_decrypted_for_a_viewer_with_the_permission():
    job_id = finished_large_secret_job()
    client = client_for(grant_payloads("reader"))
    assert f"/jobs/{job_id}/payload/result" in client.get(f"/jobs/{job_id}/").content.decode()
    arguments = json.loads(client.get(f"/jobs/{job_id}/payload/arguments").content)
    assert arguments == {"args": [2, 3], "kwargs": {"label": LABEL}}
    assert json.loads(client.get(f"/jobs/{job_id}/payload/result").content) == {"sum": 5, "label": LABEL}


def test_taskctl_prints_encrypted_payloads_only_as_a_user_with_the_permission():
    job_id = str(finished_large_secret_job())
    with pytest.raises(CommandError, match="payloads are encrypted: print them with --user NAME"):
        taskctl("jobs", "payload", job_id, "result")
    grant_payloads("reader")
    printed = taskctl_json("jobs", "payload", job_id, "result", "--user", "reader")
    assert printed == {"sum": 5, "label": LABEL}
