"""REST API: create workflows from JSON, list and read them, cancel one, retry a step."""

from __future__ import annotations

from typing import Any

import pytest

from queues.models import Job, Workflow
from queues.testing import run_jobs

from .api import ApiClient, fields
from .factories import make_queue, make_token

pytestmark = pytest.mark.django_db

PIPELINE: dict[str, Any] = {
    "name": "nightly",
    "steps": [
        {"name": "fetch", "task": "tests.tasks.concat", "args": ["x", "1"]},
        {
            "name": "parse",
            "task": "tests.tasks.concat",
            "args": ["2"],
            "depends_on": ["fetch"],
            "pass_result": True,
        },
        {"name": "side", "task": "tests.tasks.noop"},
        {"name": "report", "task": "tests.tasks.noop", "depends_on": ["parse", "side"]},
    ],
    "on_complete": {"task": "tests.tasks.workflow_callback", "args": ["complete"]},
}


@pytest.fixture
def api() -> ApiClient:
    return ApiClient()


def test_create_answers_201_with_every_step_and_its_state(api):
    response = api.post("/workflows", PIPELINE)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["name"], body["status"], body["total"], body["done"]) == ("nightly", "running", 4, 0)
    steps = {step["name"]: step for step in body["steps"]}
    assert [step["name"] for step in body["steps"]] == ["fetch", "side", "parse", "report"]
    assert steps["report"]["depends_on"] == ["parse", "side"]
    assert (steps["fetch"]["status"], steps["parse"]["status"]) == ("queued", "blocked")
    assert body["callbacks"]["on_complete"] == {
        "task": "tests.tasks.workflow_callback",
        "fired_at": None,
        "job_id": None,
    }


def test_a_created_workflow_runs_and_reads_back_finished(api):
    workflow_id = api.post("/workflows", PIPELINE).json()["id"]
    run_jobs()
    body = api.get(f"/workflows/{workflow_id}").json()
    assert (body["status"], body["done"], body["percent"]) == ("succeeded", 4, 100)
    parse = next(step for step in body["steps"] if step["name"] == "parse")
    assert Job.objects.get(id=parse["job_id"]).result == "x12"
    assert body["callbacks"]["on_complete"]["job_id"] is not None


def test_a_step_naming_an_unknown_dependency_is_a_400_and_nothing_is_enqueued(api):
    bad = {"steps": [{"name": "a", "task": "tests.tasks.noop", "depends_on": ["b"]}]}
    response = api.post("/workflows", bad)
    assert response.status_code == 400
    assert "depends on 'b', which is no step" in response.json()["detail"]
    assert not Job.objects.exists() and not Workflow.objects.exists()


def test_a_cycle_is_a_400(api):
    steps = [
        {"name": "a", "task": "tests.tasks.noop", "depends_on": ["b"]},
        {"name": "b", "task": "tests.tasks.noop", "depends_on": ["a"]},
    ]
    response = api.post("/workflows", {"steps": steps})
    assert response.status_code == 400 and "cycle" in response.json()["detail"]


def test_an_unknown_task_or_field_is_a_400_naming_it(api):
    assert fields(api.post("/workflows", {"steps": [{"name": "a", "task": "nope"}]})) == ["steps.0.task"]
    response = api.post("/workflows", {"steps": [{"name": "a", "task": "tests.tasks.noop", "after": []}]})
    assert fields(response) == ["steps.0.after"]
    assert fields(api.post("/workflows", {"steps": []})) == ["steps"]


def test_list_shows_running_and_finished_workflows(api):
    first = api.post("/workflows", PIPELINE).json()["id"]
    run_jobs()
    second = api.post("/workflows", PIPELINE).json()["id"]
    assert [w["id"] for w in api.get("/workflows").json()["items"]] == [second, first]
    assert [w["id"] for w in api.get("/workflows", status="running").json()["items"]] == [second]
    assert [w["id"] for w in api.get("/workflows", status="finished").json()["items"]] == [first]


def test_an_unknown_workflow_is_a_json_404(api):
    response = api.get("/workflows/999999")
    assert response.status_code == 404
    assert response.json() == {"detail": "Workflow 999999 does not exist."}


def test_cancel_cancels_every_unfinished_step(api):
    workflow_id = api.post("/workflows", PIPELINE).json()["id"]
    body = api.post(f"/workflows/{workflow_id}/cancel").json()
    assert body["status"] == "cancelled"
    assert {step["status"] for step in body["steps"]} == {"cancelled"}


def test_retrying_a_dead_step_makes_its_dependents_wait_again(api, tmp_path):
    fixed = tmp_path / "fixed"
    steps = [
        {"name": "risky", "task": "tests.tasks.fail_until_file_exists", "args": [str(fixed)]},
        {"name": "after", "task": "tests.tasks.noop", "depends_on": ["risky"]},
    ]
    workflow_id = api.post("/workflows", {"steps": steps}).json()["id"]
    run_jobs()
    assert api.get(f"/workflows/{workflow_id}").json()["status"] == "failed"
    fixed.touch()
    body = api.post(f"/workflows/{workflow_id}/steps/risky/retry").json()
    assert [(s["name"], s["status"]) for s in body["steps"]] == [("risky", "queued"), ("after", "blocked")]
    run_jobs()
    assert api.get(f"/workflows/{workflow_id}").json()["status"] == "succeeded"


def test_retrying_an_unknown_step_is_a_404_and_a_running_one_a_409(api):
    workflow_id = api.post("/workflows", PIPELINE).json()["id"]
    assert api.post(f"/workflows/{workflow_id}/steps/nope/retry").status_code == 404
    assert api.post(f"/workflows/{workflow_id}/steps/parse/retry").status_code == 409


def test_a_read_only_token_can_read_but_not_create_or_cancel():
    workflow_id = ApiClient().post("/workflows", PIPELINE).json()["id"]
    reader = ApiClient(make_token("reader", scope="read"))
    assert reader.get(f"/workflows/{workflow_id}").status_code == 200
    assert reader.post("/workflows", PIPELINE).status_code == 403
    assert reader.post(f"/workflows/{workflow_id}/cancel").status_code == 403


def test_steps_go_to_the_queue_each_names(api):
    make_queue("images")
    body = api.post(
        "/workflows", {"steps": [{"name": "a", "task": "tests.tasks.noop", "queue": "images"}]}
    ).json()
    assert body["steps"][0]["queue"] == "images"
