"""REST API: enqueue, read, list, cancel and retry jobs."""

from __future__ import annotations

import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from queues import lifecycle, values
from queues.models import Job
from queues.states import Status

from .api import ApiClient, fields
from .factories import make_job, make_queue, start_claimed

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> ApiClient:
    return ApiClient()


def test_enqueue_answers_201_with_the_new_job(api):
    response = api.post("/jobs", {"task": "tests.tasks.add", "args": [1, 2]})
    assert response.status_code == 201
    assert Job.objects.get(pk=response.json()["id"]).args == [1, 2]


def test_enqueue_accepts_a_priority_name(api):
    response = api.post("/jobs", {"task": "tests.tasks.noop", "priority": "high"})
    assert response.json()["priority"] == 10


def test_enqueue_with_a_delay_schedules_the_job(api):
    response = api.post("/jobs", {"task": "tests.tasks.noop", "delay": 3600})
    body = response.json()
    assert body["status"] == Status.SCHEDULED


def test_enqueue_with_run_at_runs_no_earlier(api):
    run_at = (timezone.now() + timedelta(days=1)).replace(microsecond=0)
    response = api.post("/jobs", {"task": "tests.tasks.noop", "run_at": run_at.isoformat()})
    assert Job.objects.get(pk=response.json()["id"]).run_after == run_at


def test_enqueue_takes_max_attempts_and_timeout(api):
    response = api.post("/jobs", {"task": "tests.tasks.noop", "max_attempts": 9, "timeout": 12})
    assert (response.json()["max_attempts"], response.json()["timeout"]) == (9, 12)


def test_a_reused_idempotency_key_answers_200_with_the_existing_job(api):
    first = api.post("/jobs", {"task": "tests.tasks.noop", "idempotency_key": "k1"})
    second = api.post("/jobs", {"task": "tests.tasks.noop", "idempotency_key": "k1"})
    assert (second.status_code, second.json()["id"]) == (200, first.json()["id"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"task": "tests.tasks.missing"}, "task"),
        ({"task": "tests.tasks.noop", "queue": "typo"}, "queue"),
        ({"task": "tests.tasks.noop", "priority": 101}, "priority"),
        ({"task": "tests.tasks.noop", "priority": "urgent"}, "priority"),
        ({"task": "tests.tasks.noop", "args": {"a": 1}}, "args"),
        ({"task": "tests.tasks.noop", "kwargs": [1]}, "kwargs"),
        ({"task": "tests.tasks.noop", "max_attempts": 0}, "max_attempts"),
        ({"task": "tests.tasks.noop", "delay": -1}, "delay"),
        ({"task": "tests.tasks.noop", "colour": "red"}, "colour"),
        ({"args": []}, "task"),
    ],
)
def test_bad_input_is_400_naming_the_field_and_creates_nothing(api, body, field):
    response = api.post("/jobs", body)
    assert (response.status_code, field in fields(response)) == (400, True)
    assert not Job.objects.exists()


def test_both_delay_and_run_at_is_400(api):
    response = api.post(
        "/jobs", {"task": "tests.tasks.noop", "delay": 1, "run_at": timezone.now().isoformat()}
    )
    assert response.status_code == 400


def test_malformed_json_is_400_about_the_body(api):
    response = api.post("/jobs", raw='{"task": ')
    assert (response.status_code, fields(response)) == (400, ["body"])


def test_args_that_are_not_storable_json_are_400(api):
    response = api.post("/jobs", raw='{"task": "tests.tasks.noop", "args": [NaN]}')
    assert (response.status_code, fields(response)) == (400, ["body"])
    assert not Job.objects.exists()


def test_nul_characters_in_arguments_are_400(api):
    response = api.post("/jobs", {"task": "tests.tasks.noop", "args": ["a\u0000b"]})
    assert response.status_code == 400


def test_a_body_over_the_limit_is_413_and_creates_nothing(api, settings):
    settings.QUEUES_API_MAX_BODY = 1000
    response = api.post("/jobs", {"task": "tests.tasks.noop", "args": ["x" * 2000]})
    assert response.status_code == 413
    assert not Job.objects.exists()


def test_the_body_limit_defaults_to_one_mebibyte(api):
    response = api.post("/jobs", {"task": "tests.tasks.noop", "args": ["x" * (1024 * 1024)]})
    assert response.status_code == 413


def test_get_shows_status_attempts_result_and_progress(api):
    job = make_job("tests.tasks.add", args=[1, 2])
    (claimed,) = start_claimed("w", None, 1)
    now = timezone.now()
    lifecycle.finish("w", [values.Finished(claimed, "succeeded", now, now, result_json="3")])
    body = api.get(f"/jobs/{job.pk}").json()
    assert (body["status"], body["attempts"], body["result"], body["progress"]) == ("succeeded", 1, 3, 100)


def test_get_lists_the_errors_of_failed_attempts(api):
    job = make_job("tests.tasks.fail")
    (claimed,) = start_claimed("w", None, 1)
    now = timezone.now()
    failed = values.Finished(claimed, "failed", now, now, error_type="RuntimeError", error_message="boom")
    lifecycle.finish("w", [failed])
    errors = api.get(f"/jobs/{job.pk}").json()["errors"]
    assert [(e["error_type"], e["error_message"]) for e in errors] == [("RuntimeError", "boom")]


def test_get_an_unknown_job_is_404(api):
    assert api.get("/jobs/999999").status_code == 404


def test_list_filters_by_queue_status_and_task(api):
    make_queue("mail")
    wanted = make_job("tests.tasks.add", queue="mail", args=[1, 1])
    make_job("tests.tasks.add", args=[1, 1])
    make_job("tests.tasks.noop", queue="mail")
    items = api.get("/jobs", queue="mail", status="queued", task="tests.tasks.add").json()["items"]
    assert [item["id"] for item in items] == [wanted.pk]


def test_list_searches_like_the_console(api):
    wanted = make_job(args=["Invoice-4711"])
    make_job(args=["other"])
    assert [item["id"] for item in api.get("/jobs", q="invoice").json()["items"]] == [wanted.pk]


def test_list_by_a_queue_that_cannot_exist_is_400(api):
    assert api.get("/jobs", queue="no spaces").status_code == 400


def test_list_pages_with_a_cursor_newest_first(api):
    ids = [make_job().pk for _ in range(5)]
    first = api.get("/jobs", limit=3).json()
    second = api.get("/jobs", limit=3, cursor=first["next_cursor"]).json()
    pages = [[item["id"] for item in first["items"]], [item["id"] for item in second["items"]]]
    assert (pages, second["next_cursor"]) == ([ids[:1:-1], ids[1::-1]], None)


def test_list_with_a_bad_cursor_is_400(api):
    assert api.get("/jobs", cursor="abc").status_code == 400


def test_list_with_an_unknown_status_is_400(api):
    assert api.get("/jobs", status="lost").status_code == 400


def test_cancel_cancels_a_queued_job(api):
    job = make_job()
    assert api.post(f"/jobs/{job.pk}/cancel").json()["status"] == Status.CANCELLED


def test_cancel_of_a_finished_job_is_409_and_changes_nothing(api):
    job = make_job()
    lifecycle.cancel(job.pk)
    response = api.post(f"/jobs/{job.pk}/cancel")
    assert response.status_code == 409
    assert "cancelled" in response.json()["detail"]


def test_cancel_of_an_unknown_job_is_404(api):
    assert api.post("/jobs/424242/cancel").status_code == 404


def test_retry_puts_a_cancelled_job_back_in_its_queue(api):
    job = make_job()
    lifecycle.cancel(job.pk)
    assert api.post(f"/jobs/{job.pk}/retry").json()["status"] == Status.QUEUED


def test_retry_of_a_queued_job_is_409(api):
    job = make_job()
    assert api.post(f"/jobs/{job.pk}/retry").status_code == 409


def test_a_job_id_beyond_64_bits_is_400_not_a_database_error(api):
    assert api.get(f"/jobs/{2**70}").status_code == 400


def test_enqueue_without_options_takes_the_tasks_own_options(api):
    body = api.post("/jobs", {"task": "tests.tasks.with_options"}).json()
    assert (body["max_attempts"], body["timeout"]) == (7, 11)


def test_a_nul_character_in_the_url_is_400(api):
    assert api.get("/queues/a%00b").status_code == 400


def test_the_openapi_schema_and_the_docs_are_served(api):
    assert (api.get("/openapi.json").status_code, api.get("/docs").status_code) == (200, 200)


@pytest.mark.parametrize("run_at", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_a_run_at_no_reader_could_handle_is_400_and_stores_nothing(api, run_at):
    response = api.post("/jobs", {"task": "tests.tasks.noop", "run_at": run_at})
    assert (response.status_code, fields(response)) == (400, ["run_at"])
    assert not Job.objects.exists()


def test_a_run_at_more_than_a_year_and_a_day_ahead_is_400(api):
    run_at = (timezone.now() + timedelta(days=400)).isoformat()
    assert api.post("/jobs", {"task": "tests.tasks.noop", "run_at": run_at}).status_code == 400


@pytest.mark.parametrize(
    "option", [{"priority": True}, {"max_attempts": True}, {"timeout": "60"}, {"delay": False}]
)
def test_true_or_text_is_not_a_number_of_anything(api, option):
    response = api.post("/jobs", {"task": "tests.tasks.noop", **option})
    assert (response.status_code, fields(response)) == (400, list(option))
    assert not Job.objects.exists()


def test_a_whole_number_may_be_written_with_a_decimal_point(api):
    body = api.post("/jobs", {"task": "tests.tasks.noop", "priority": 5.0, "max_attempts": 2.0}).json()
    assert (body["priority"], body["max_attempts"]) == (5, 2)


def test_arguments_nested_a_thousand_deep_are_400(api):
    args = "[" * 1000 + "]" * 1000
    response = api.post("/jobs", raw=f'{{"task": "tests.tasks.noop", "args": [{args}]}}')
    assert (response.status_code, "nest" in response.json()["detail"]) == (400, True)
    assert not Job.objects.exists()


def test_a_body_nested_fifty_thousand_deep_is_400(api):
    response = api.post("/jobs", raw="[" * 50_000 + "]" * 50_000)
    assert (response.status_code, fields(response)) == (400, ["body"])


def test_a_task_that_is_not_registered_is_400_and_its_module_is_never_imported(api):
    response = api.post("/jobs", {"task": "tests.import_probe.anything"})
    assert (response.status_code, fields(response)) == (400, ["task"])
    assert "tests.import_probe" not in sys.modules


@pytest.mark.parametrize("task", [".tasks.noop", "..", "tests..noop"])
def test_a_malformed_task_path_is_400(api, task):
    assert api.post("/jobs", {"task": task}).status_code == 400
