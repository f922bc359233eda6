"""REST API: schedules created, read, changed, deleted and run now."""

from __future__ import annotations

import sys

import pytest

from queues.models import Job, Schedule

from .api import ApiClient, fields

pytestmark = pytest.mark.django_db

HOURLY = {"name": "report", "cron": "@hourly", "task": "tests.tasks.add", "args": [1, 2]}


@pytest.fixture
def api() -> ApiClient:
    return ApiClient()


def test_create_answers_201_and_plans_the_next_run(api):
    response = api.post("/schedules", HOURLY)
    assert response.status_code == 201
    next_run = Schedule.objects.get(name="report").next_run_at
    assert (next_run.minute, next_run.second) == (0, 0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cron", "61 * * * *"),
        ("cron", "* * * *"),
        ("cron", "@sometimes"),
        ("task", "tests.tasks.missing"),
        ("queue", "typo"),
        ("priority", 500),
        ("time_zone", "Mars/Olympus"),
    ],
)
def test_create_with_bad_input_is_400_naming_the_field(api, field, value):
    response = api.post("/schedules", {**HOURLY, field: value})
    assert (response.status_code, field in fields(response)) == (400, True)
    assert not Schedule.objects.exists()


def test_a_second_schedule_with_the_same_name_is_409(api):
    api.post("/schedules", HOURLY)
    assert api.post("/schedules", HOURLY).status_code == 409


def test_update_changes_the_cron_and_replans(api):
    schedule_id = api.post("/schedules", HOURLY).json()["id"]
    body = api.patch(f"/schedules/{schedule_id}", {"cron": "0 3 * * *"}).json()
    assert (body["cron"], body["next_run_at"][11:16]) == ("0 3 * * *", "03:00")


def test_update_with_a_bad_cron_is_400_and_changes_nothing(api):
    schedule_id = api.post("/schedules", HOURLY).json()["id"]
    assert api.patch(f"/schedules/{schedule_id}", {"cron": "nope"}).status_code == 400
    assert Schedule.objects.get().cron == "@hourly"


def test_delete_removes_the_schedule(api):
    schedule_id = api.post("/schedules", HOURLY).json()["id"]
    assert api.delete(f"/schedules/{schedule_id}").status_code == 204
    assert not Schedule.objects.exists()


def test_run_now_enqueues_a_job_of_the_schedule(api):
    schedule_id = api.post("/schedules", HOURLY).json()["id"]
    job_id = api.post(f"/schedules/{schedule_id}/run").json()["id"]
    assert Job.objects.get(pk=job_id).args == [1, 2]


def test_an_unknown_schedule_is_404(api):
    assert api.get("/schedules/4242").status_code == 404


def test_a_cron_that_never_comes_due_is_400(api):
    response = api.post("/schedules", {**HOURLY, "cron": "0 0 31 2 *"})
    assert (response.status_code, fields(response)) == (400, ["cron"])


def test_a_task_that_is_not_registered_is_400_and_its_module_is_never_imported(api):
    response = api.post("/schedules", {**HOURLY, "task": "tests.import_probe.anything"})
    assert (response.status_code, fields(response)) == (400, ["task"])
    assert "tests.import_probe" not in sys.modules
    assert not Schedule.objects.exists()


@pytest.mark.parametrize("change", [{"task": ".tasks.add"}, {"priority": True}, {"enabled": 1}])
def test_a_malformed_field_is_400_and_saves_nothing(api, change):
    response = api.post("/schedules", {**HOURLY, **change})
    assert (response.status_code, fields(response)) == (400, list(change))
    assert not Schedule.objects.exists()
