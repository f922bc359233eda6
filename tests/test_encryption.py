"""Payload encryption at rest (queues.encryption): what is stored, who sees what, and bad keys.

Jobs run here in the test's process through the worker's own execution path
(``queues.testing.run_jobs``); tests/test_encryption_worker.py runs real workers.
"""

from __future__ import annotations

import json
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from queues import encryption, lifecycle
from queues.checks import check_payload_keys
from queues.compat import InvalidTaskError
from queues.console import render
from queues.encryption import HIDDEN, PayloadKeyError
from queues.exceptions import error_path
from queues.models import Attempt, Job
from queues.states import Status
from queues.testing import run_jobs

from . import tasks
from .api import ApiClient
from .console_helpers import client_for, make_user, make_viewer
from .factories import make_job, make_queue, make_token

pytestmark = pytest.mark.django_db

SECRET = "PLAINTEXT-7f3a9c"
KEYS = "TASKWEB_PAYLOAD_KEYS"


def new_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def key(monkeypatch) -> str:
    value = new_key()
    monkeypatch.setenv(KEYS, value)
    return value


def stored_rows() -> str:
    """Every payload column of every job, attempt and dead letter, read with a plain cursor."""
    queries = [
        "SELECT args, kwargs, result, last_error, meta FROM queues_job",
        "SELECT error_message, traceback FROM queues_attempt",
        "SELECT error_message, traceback FROM queues_deadletter",
    ]
    texts = []
    with connection.cursor() as cursor:
        for query in queries:
            cursor.execute(query)
            texts += [str(value) for row in cursor.fetchall() for value in row]
    return "\n".join(texts)


def finished_secret_jobs() -> tuple[str, str]:
    """One encrypted job that succeeded and one that failed for good, both carrying SECRET."""
    done = tasks.secret_sum.enqueue(2, 3, label=SECRET)
    failed = tasks.secret_failure.enqueue(SECRET)
    run_jobs()
    return done.id, failed.id


def grant_payloads(username: str):
    return make_user(username, perms=("view_job", "view_payloads"))


# --- what the database holds ----------------------------------------------------------------


def test_an_encrypted_tasks_arguments_result_and_errors_are_stored_without_plaintext(key):
    done, failed = finished_secret_jobs()
    assert Job.objects.get(pk=done).status == Status.SUCCEEDED
    assert Job.objects.get(pk=failed).status == Status.DEAD
    rows = stored_rows()
    assert SECRET not in rows
    assert "cannot use" not in rows, "the error message is encrypted too"
    assert "Traceback" not in rows, "and the traceback"
    assert rows.count(encryption.PREFIX) >= 5  # args x2, result, error message, traceback...


def test_the_tasks_api_returns_the_decrypted_arguments_and_result(key):
    done, failed = finished_secret_jobs()
    result = tasks.secret_sum.get_result(done)
    assert result.args == [2, 3] and result.kwargs == {"label": SECRET}
    assert result.return_value == {"sum": 5, "label": SECRET}
    (error,) = tasks.secret_failure.get_result(failed).errors
    assert f"cannot use {SECRET}" in error.traceback


def test_enqueue_returns_the_arguments_as_given(key):
    result = tasks.secret_sum.enqueue(1, 2, label=SECRET)
    assert (result.args, result.kwargs) == ([1, 2], {"label": SECRET})


def test_a_queue_with_encrypt_on_stores_every_job_encrypted(key):
    make_queue("vault", encrypt=True)
    job = make_job("tests.tasks.echo_args", queue="vault", args=[SECRET])
    assert encryption.is_encrypted(job)
    assert SECRET not in stored_rows()


def test_QUEUES_ENCRYPT_ALL_encrypts_every_job(key):
    with override_settings(QUEUES_ENCRYPT_ALL=True):
        tasks.add.enqueue(SECRET, "x")
    assert SECRET not in stored_rows()
    assert Job.objects.get().meta["encrypted"] == encryption.key_id(key.encode())


def test_other_jobs_are_stored_in_the_clear(key):
    make_job("tests.tasks.echo_args", args=[SECRET])
    assert SECRET in stored_rows()


def test_the_worker_parent_is_handed_only_ciphertext(key):
    tasks.secret_sum.enqueue(2, 3, label=SECRET)
    (claimed,) = lifecycle.claim("parent", None, 1)
    assert encryption.sealed_arguments(claimed.args, claimed.kwargs)
    assert SECRET not in json.dumps([claimed.args, claimed.kwargs])


def test_a_queue_setting_is_changed_like_the_others(key):
    make_queue("vault")
    assert lifecycle.update_queue("vault", encrypt=True).encrypt is True
    assert ApiClient().patch("/queues/vault", {"encrypt": False}).json()["encrypt"] is False


# --- keys ---------------------------------------------------------------------------------------


def test_enqueue_without_a_key_is_refused_and_stores_nothing(monkeypatch):
    monkeypatch.delenv(KEYS, raising=False)
    with pytest.raises(InvalidTaskError, match=f"{KEYS} is not set"):
        tasks.secret_sum.enqueue(1, 2)
    assert not Job.objects.exists()


def test_a_malformed_key_is_named_by_its_position(monkeypatch):
    monkeypatch.setenv(KEYS, f"{new_key()},not-a-key")
    with pytest.raises(PayloadKeyError, match="malformed key at position 2"):
        encryption.keys()


def test_the_first_key_encrypts_and_every_key_decrypts(monkeypatch):
    old, new = new_key(), new_key()
    monkeypatch.setenv(KEYS, old)
    sealed = encryption.seal(SECRET)
    monkeypatch.setenv(KEYS, f"{new},{old}")
    assert encryption.open_sealed(sealed) == SECRET
    assert encryption.seal("x").startswith(f"{encryption.PREFIX}{encryption.key_id(new.encode())}:")


def test_a_job_whose_key_is_gone_fails_at_once_with_a_clear_error(monkeypatch):
    monkeypatch.setenv(KEYS, new_key())
    sealed = tasks.secret_sum.enqueue(2, 3)
    plain = tasks.add.enqueue(1, 1)
    monkeypatch.setenv(KEYS, new_key())  # the key it was sealed with is no longer configured
    with pytest.raises(PayloadKeyError):  # run_jobs reads results back with get_result, which needs it too
        run_jobs()
    job = Job.objects.get(pk=sealed.id)
    assert job.status == Status.DEAD and job.attempts == 1, "not retried"
    attempt = job.attempt_history.get()
    assert attempt.error_type == error_path(PayloadKeyError)
    assert "was encrypted with key" in attempt.error_message
    assert "none of the 1 key(s)" in attempt.error_message
    assert Job.objects.get(pk=plain.id).status == Status.SUCCEEDED, "the other job ran"


def test_reading_a_result_without_its_key_is_a_clear_error(monkeypatch, key):
    sealed = tasks.secret_sum.enqueue(2, 3)
    monkeypatch.setenv(KEYS, new_key())
    with pytest.raises(PayloadKeyError, match="was encrypted with key"):
        tasks.secret_sum.get_result(sealed.id)


def test_a_job_without_any_key_in_the_worker_fails_naming_the_variable(monkeypatch, key):
    sealed = tasks.secret_sum.enqueue(2, 3)
    monkeypatch.delenv(KEYS)
    with pytest.raises(PayloadKeyError):
        run_jobs()
    attempt = Job.objects.get(pk=sealed.id).attempt_history.get()
    assert attempt.error_type == error_path(PayloadKeyError)
    assert f"{KEYS} is not set" in attempt.error_message


# --- who sees what: API ---------------------------------------------------------------------------


def test_the_api_shows_encrypted_payloads_as_encrypted_without_the_permission(key):
    done, failed = finished_secret_jobs()
    api = ApiClient(make_token("viewer", user=make_viewer()))
    job = api.get(f"/jobs/{done}").json()
    assert (job["args"], job["kwargs"], job["result"], job["encrypted"]) == (HIDDEN, HIDDEN, HIDDEN, True)
    dead = api.get(f"/jobs/{failed}").json()
    assert dead["last_error"] == f"{error_path(tasks.NonRetryable)}: {HIDDEN}"
    assert (dead["errors"][0]["error_message"], dead["errors"][0]["traceback"]) == (HIDDEN, HIDDEN)
    assert api.get("/dead-letters").json()["items"][0]["error_message"] == HIDDEN
    assert SECRET not in api.get("/jobs").content.decode()


def test_the_api_shows_plaintext_to_a_caller_with_the_permission(key):
    done, failed = finished_secret_jobs()
    api = ApiClient(make_token("reader", user=grant_payloads("reader"), scope="read"))
    job = api.get(f"/jobs/{done}").json()
    assert (job["args"], job["kwargs"]) == ([2, 3], {"label": SECRET})
    assert job["result"] == {"sum": 5, "label": SECRET}
    dead = api.get(f"/jobs/{failed}").json()
    assert dead["errors"][0]["error_message"] == f"cannot use {SECRET}"
    assert f"cannot use {SECRET}" in dead["errors"][0]["traceback"]
    assert api.get("/dead-letters").json()["items"][0]["error_message"] == f"cannot use {SECRET}"


def test_the_api_search_by_arguments_says_it_cannot_see_encrypted_jobs(key):
    make_job("tests.tasks.echo_args", args=[SECRET])
    tasks.secret_sum.enqueue(1, 2, label=SECRET)
    page = ApiClient().get("/jobs", q=SECRET).json()
    assert len(page["items"]) == 1 and not page["items"][0]["encrypted"]
    assert page["note"] == "1 encrypted job(s) were not searched: their arguments are encrypted."


def test_the_api_answers_without_a_note_when_nothing_is_encrypted(key):
    make_job("tests.tasks.echo_args", args=[SECRET])
    assert ApiClient().get("/jobs", q=SECRET).json()["note"] is None


# --- who sees what: console -----------------------------------------------------------------------


def test_the_console_shows_encrypted_payloads_as_encrypted_without_the_permission(key):
    done, failed = finished_secret_jobs()
    client = client_for(make_viewer())
    for job_id in (done, failed):
        page = client.get(f"/jobs/{job_id}/").content.decode()
        assert SECRET not in page and HIDDEN in page
    assert SECRET not in client.get("/dead/").content.decode()


def test_the_console_shows_plaintext_to_a_viewer_with_the_permission(key):
    done, failed = finished_secret_jobs()
    client = client_for(grant_payloads("reader"))
    page = client.get(f"/jobs/{done}/").content.decode()
    assert SECRET in page and f"&quot;{SECRET}&quot;" in page, "arguments and result, escaped"
    assert f"cannot use {SECRET}" in client.get(f"/jobs/{failed}/").content.decode()


def test_the_console_search_says_it_cannot_see_encrypted_jobs(key):
    tasks.secret_sum.enqueue(1, 2, label=SECRET)
    page = client_for(make_viewer()).get("/jobs/", {"q": SECRET}).content.decode()
    assert "1 encrypted job(s) were not searched: their arguments are encrypted." in page


# --- who sees what: taskctl ---------------------------------------------------------------------


def taskctl(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("taskctl", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_taskctl_shows_encrypted_payloads_as_encrypted(key):
    done, failed = finished_secret_jobs()
    shown = taskctl("jobs", "show", failed)[0] + taskctl("jobs", "show", done)[0]
    assert SECRET not in shown and f"args: {HIDDEN}" in shown and f"result: {HIDDEN}" in shown
    assert SECRET not in taskctl("dlq", "list", "--json")[0]


def test_taskctl_shows_plaintext_as_a_user_with_the_permission(key):
    done, failed = finished_secret_jobs()
    grant_payloads("reader")
    assert SECRET in taskctl("jobs", "show", done, "--user", "reader")[0]
    assert f"cannot use {SECRET}" in taskctl("jobs", "show", failed, "--user", "reader")[0]
    assert f"cannot use {SECRET}" in taskctl("dlq", "list", "--user", "reader", "--json")[0]


def test_taskctl_refuses_plaintext_to_a_user_without_the_permission(key):
    done, _ = finished_secret_jobs()
    make_viewer("viewer")
    with pytest.raises(CommandError, match="viewer may not see encrypted payloads"):
        taskctl("jobs", "show", done, "--user", "viewer")


def test_taskctl_search_by_arguments_notes_the_encrypted_jobs(key):
    tasks.secret_sum.enqueue(1, 2, label=SECRET)
    out, err = taskctl("jobs", "list", "--search", SECRET, "--json")
    assert json.loads(out) == []
    assert err.strip() == "1 encrypted job(s) were not searched: their arguments are encrypted."


def test_the_api_refuses_a_job_it_cannot_encrypt_with_a_400(monkeypatch):
    monkeypatch.delenv(KEYS, raising=False)
    make_queue("vault", encrypt=True)
    answer = ApiClient().post("/jobs", {"task": "tests.tasks.add", "args": [1, 2], "queue": "vault"})
    assert answer.status_code == 400
    assert f"{KEYS} is not set" in answer.json()["detail"]
    assert not Job.objects.exists()


def test_a_malformed_key_is_reported_by_the_system_checks(monkeypatch):
    monkeypatch.setenv(KEYS, "not-a-key")
    (warning,) = check_payload_keys(None)
    assert warning.id == "queues.W001" and "malformed key at position 1" in warning.msg


def test_the_system_checks_are_quiet_when_nothing_is_encrypted(monkeypatch):
    monkeypatch.delenv(KEYS, raising=False)
    assert check_payload_keys(None) == []


def test_the_consoles_live_fragments_show_encrypted_payloads_as_encrypted_unless_revealed(key):
    done, failed = finished_secret_jobs()
    for job_id in (done, failed):
        attempts = list(Attempt.objects.filter(job_id=job_id))
        job = Job.objects.get(pk=job_id)
        html = render.job_live(job, job_id) + render.new_attempts(attempts, len(attempts))
        assert SECRET not in html and HIDDEN in html
        shown = render.job_live(job, job_id, True) + render.new_attempts(attempts, len(attempts), True)
        assert SECRET in shown and HIDDEN not in shown
