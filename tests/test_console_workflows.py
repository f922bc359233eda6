"""Console pages of workflows: the list, one workflow's steps stage by stage, cancel and retry."""

from __future__ import annotations

import pytest
from django.test import Client

from queues.models import Job
from queues.states import Status
from queues.testing import run_jobs
from queues.workflows import chain, group, workflow

from . import tasks
from .console_helpers import client_for, make_operator, make_viewer

pytestmark = pytest.mark.django_db


def pipeline(name: str = "nightly <b>import</b>"):
    return workflow(
        chain(
            tasks.step_log.s("a").set(name="fetch"),
            group(tasks.step_log.s(str(i)).set(name=f"part {i}") for i in range(2)),
            tasks.step_log.s("z").set(name="report"),
        ),
        name=name,
        on_complete=tasks.workflow_callback.s("complete"),
    ).enqueue()


def test_the_list_shows_each_workflow_with_its_progress_escaped():
    run = pipeline()
    page = client_for(make_viewer()).get("/workflows/").content.decode()
    assert f'href="/workflows/{run.id}/"' in page
    assert "nightly &lt;b&gt;import&lt;/b&gt;" in page
    assert "0/4" in page and "status-running" in page


def test_a_workflow_page_lists_its_steps_by_stage_with_their_states():
    run = pipeline()
    page = client_for(make_viewer()).get(f"/workflows/{run.id}/").content.decode()
    rows = [line for line in page.splitlines() if "data-step=" in line]
    assert [row.split('"')[1] for row in rows] == ["fetch", "part 0", "part 1", "report"]
    assert page.count("status-blocked") == 3 and page.count('status-queued">queued') == 1
    assert "part 0, part 1" in page  # what the report waits for
    assert "Cancel workflow" not in page and "Retry" not in page  # read-only: no buttons


def test_the_page_refreshes_itself_with_the_live_part_only():
    run = pipeline()
    client = client_for(make_viewer())
    page = client.get(f"/workflows/{run.id}/").content.decode()
    assert f'hx-get="/workflows/{run.id}/" hx-trigger="every 1s"' in page
    run_jobs()
    live = client.get(f"/workflows/{run.id}/", headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in live
    assert 'id="workflow-status">succeeded' in live
    assert live.count('status-succeeded">succeeded') == 4  # each step
    assert "job #" in live  # the on_complete callback fired


def test_an_operator_cancels_a_workflow_with_the_csrf_token():
    run = pipeline()
    client = client_for(make_operator(), enforce_csrf_checks=True)
    page = client.get(f"/workflows/{run.id}/").content.decode()
    assert "Cancel workflow" in page
    assert client.post(f"/workflows/{run.id}/cancel").status_code == 403  # no CSRF token
    token = client.cookies["csrftoken"].value
    response = client.post(f"/workflows/{run.id}/cancel", headers={"X-CSRFToken": token})
    assert response.status_code == 200 and "cancelled: 4 steps" in response.content.decode()
    assert set(Job.objects.filter(step__workflow_id=run.id).values_list("status", flat=True)) == {"cancelled"}


def test_cancelling_needs_the_permission_and_changes_nothing_without_it():
    run = pipeline()
    assert client_for(make_viewer()).post(f"/workflows/{run.id}/cancel").status_code == 403
    assert not Job.objects.filter(status=Status.CANCELLED).exists()


def test_a_dead_step_offers_retry_and_its_dependents_wait_again_after_it(tmp_path):
    fixed = tmp_path / "fixed"
    run = workflow(
        chain(tasks.fail_until_file_exists.s(str(fixed)).set(name="risky"), tasks.noop.s().set(name="after"))
    ).enqueue()
    run_jobs()
    client = client_for(make_operator())
    page = client.get(f"/workflows/{run.id}/").content.decode()
    assert f'hx-post="/jobs/{run.job_ids["risky"]}/retry"' in page
    assert "dependency " in page and " died" in page
    fixed.touch()
    assert client.post(f"/jobs/{run.job_ids['risky']}/retry").status_code == 200
    assert Job.objects.get(id=run.job_ids["after"]).status == Status.BLOCKED


def test_an_unknown_workflow_is_a_404_and_anonymous_visitors_log_in_first():
    assert client_for(make_viewer()).get("/workflows/999/").status_code == 404
    response = Client().get("/workflows/")
    assert response.status_code == 302 and "/login/" in response["Location"]
