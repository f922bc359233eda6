"""Console page of schedules and open circuits: listing, run now, closing a circuit."""

from __future__ import annotations

import pytest
from django.utils import timezone

from queues.models import Circuit, CircuitState, Job, Schedule

from .console_helpers import client_for, make_operator, make_viewer
from .factories import make_queue

pytestmark = pytest.mark.django_db


def make_schedule(name: str = "nightly <b>report</b>") -> Schedule:
    return Schedule.objects.create(
        name=name, cron="@daily", queue=make_queue("default"), task_path="tests.tasks.noop"
    )


def open_circuit(task_path: str = "tests.tasks.fail") -> Circuit:
    now = timezone.now()
    return Circuit.objects.create(
        task_path=task_path, state=CircuitState.OPEN, opened_at=now, retry_at=now, last_error="E: <script>"
    )


def test_the_page_lists_schedules_and_open_circuits_escaped():
    make_schedule()
    open_circuit()
    page = client_for(make_viewer()).get("/schedules/").content.decode()
    assert "nightly &lt;b&gt;report&lt;/b&gt;" in page
    assert "tests.tasks.fail" in page and "E: &lt;script&gt;" in page
    assert "Run now" not in page  # a read-only operator gets no buttons


def test_run_now_enqueues_the_schedules_job():
    schedule = make_schedule()
    response = client_for(make_operator()).post(f"/schedules/{schedule.pk}/run")
    job = Job.objects.get()
    assert response.status_code == 200
    assert f"enqueued job {job.pk}" in response.content.decode()
    assert Schedule.objects.get().last_job == job


def test_run_now_needs_the_permission_and_changes_nothing_without_it():
    schedule = make_schedule()
    response = client_for(make_viewer()).post(f"/schedules/{schedule.pk}/run")
    assert response.status_code == 403
    assert not Job.objects.exists()


def test_closing_an_open_circuit_lets_its_task_run_again():
    open_circuit()
    response = client_for(make_operator()).post("/circuits/tests.tasks.fail/close")
    assert response.status_code == 200
    assert Circuit.objects.get().state == CircuitState.CLOSED
    assert client_for(make_operator("other")).post("/circuits/tests.tasks.fail/close").status_code == 409


def test_the_tables_refresh_as_a_partial_for_htmx():
    make_schedule("hourly")
    partial = client_for(make_viewer()).get("/schedules/", HTTP_HX_REQUEST="true").content.decode()
    assert "hourly" in partial and "<html" not in partial
