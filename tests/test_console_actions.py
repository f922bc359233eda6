"""Console actions: each goes through the broker, needs CSRF and is re-checked for permission."""

from __future__ import annotations

import pytest
from django.utils import timezone

from queues import lifecycle, values
from queues.models import DeadLetter, Job, Queue
from queues.states import Outcome, Status

from .api import ApiClient
from .console_helpers import client_for, make_operator, make_viewer
from .factories import make_job, make_queue, start_claimed

pytestmark = pytest.mark.django_db


def kill(job: Job, message: str = "boom", error_type: str = "RuntimeError") -> Job:
    """Run the job once and let it die without retry, as a worker would record it."""
    (claimed,) = start_claimed("w", [job.queue.name], 1)
    now = timezone.now()
    lifecycle.finish(
        "w",
        [
            values.Finished(
                claimed,
                Outcome.FAILED,
                now,
                now,
                error_type=error_type,
                error_message=message,
                retryable=False,
            )
        ],
    )
    return Job.objects.get(id=job.id)


def status(job: Job) -> str:
    return Job.objects.get(id=job.id).status


def test_an_operator_cancels_a_queued_job():
    job = make_job()
    response = client_for(make_operator()).post(f"/jobs/{job.id}/cancel")
    assert response.status_code == 200 and status(job) == Status.CANCELLED


def test_a_refused_transition_answers_409_with_the_reason():
    job = make_job()
    lifecycle.cancel(job.id)
    response = client_for(make_operator()).post(f"/jobs/{job.id}/cancel")
    assert response.status_code == 409 and b"Cannot cancel job" in response.content


def test_an_operator_retries_a_cancelled_job():
    job = make_job()
    lifecycle.cancel(job.id)
    client_for(make_operator()).post(f"/jobs/{job.id}/retry")
    assert status(job) == Status.QUEUED


def test_a_read_only_user_cannot_cancel():
    job = make_job()
    response = client_for(make_viewer()).post(f"/jobs/{job.id}/cancel")
    assert response.status_code == 403 and status(job) == Status.QUEUED


def test_a_read_only_user_cannot_pause_a_queue():
    response = client_for(make_viewer()).post("/queues/default/pause")
    assert response.status_code == 403 and not Queue.objects.get(name="default").paused


def test_an_action_without_the_csrf_token_is_refused():
    job = make_job()
    response = client_for(make_operator(), enforce_csrf_checks=True).post(f"/jobs/{job.id}/cancel")
    assert response.status_code == 403 and status(job) == Status.QUEUED


def test_an_action_with_the_csrf_token_header_is_accepted():
    job = make_job()
    client = client_for(make_operator(), enforce_csrf_checks=True)
    client.get("/jobs/")
    token = client.cookies["csrftoken"].value
    response = client.post(f"/jobs/{job.id}/cancel", headers={"X-CSRFToken": token})
    assert response.status_code == 200 and status(job) == Status.CANCELLED


def test_bulk_cancel_acts_on_the_selected_jobs_only():
    chosen, other = make_job(), make_job()
    client_for(make_operator()).post("/jobs/bulk", {"action": "cancel", "ids": [chosen.id]})
    assert (status(chosen), status(other)) == (Status.CANCELLED, Status.QUEUED)


def test_bulk_retry_of_all_matching_uses_the_filters():
    make_queue("mail")
    mail = [make_job(queue="mail") for _ in range(3)]
    other = make_job()
    for job in [*mail, other]:
        lifecycle.cancel(job.id)
    response = client_for(make_operator()).post(
        "/jobs/bulk", {"action": "retry", "all_matching": "1", "queue": "mail"}
    )
    assert b"Retried 3 jobs" in response.content
    assert [status(job) for job in mail] == [Status.QUEUED] * 3 and status(other) == Status.CANCELLED


def test_bulk_skips_jobs_whose_status_does_not_allow_the_action():
    queued, cancelled = make_job(), make_job()
    lifecycle.cancel(cancelled.id)
    response = client_for(make_operator()).post(
        "/jobs/bulk", {"action": "cancel", "ids": [queued.id, cancelled.id]}
    )
    assert b"Cancelled 1 job; 1 skipped" in response.content


def test_bulk_delete_needs_the_delete_permission():
    job = make_job()
    response = client_for(make_viewer()).post("/jobs/bulk", {"action": "delete", "ids": [job.id]})
    assert response.status_code == 403 and Job.objects.filter(id=job.id).exists()


def test_replaying_one_dead_job_puts_it_back_in_its_queue():
    job = kill(make_job())
    operator = make_operator("alice")
    client_for(operator).post("/dead/replay", {"ids": [job.id]})
    letter = DeadLetter.objects.get(job=job)
    assert status(job) == Status.QUEUED and letter.replayed_by == "alice"


def test_the_replay_confirmation_counts_the_matching_dead_jobs_first():
    for message in ("a", "a", "b"):
        kill(make_job(), message)
    response = client_for(make_operator()).get("/dead/confirm", {"action": "replay", "error_message": "a"})
    assert b'<strong id="confirm-count">2</strong>' in response.content
    assert Job.objects.filter(status=Status.DEAD).count() == 3


def test_replaying_all_matching_replays_only_that_group():
    group = [kill(make_job(), "a") for _ in range(2)]
    other = kill(make_job(), "b")
    client_for(make_operator()).post("/dead/replay", {"all_matching": "1", "error_message": "a"})
    assert [status(job) for job in group] == [Status.QUEUED] * 2 and status(other) == Status.DEAD


def test_a_read_only_user_cannot_replay():
    job = kill(make_job())
    response = client_for(make_viewer()).post("/dead/replay", {"ids": [job.id]})
    assert response.status_code == 403 and status(job) == Status.DEAD


def test_pausing_and_resuming_a_queue():
    client = client_for(make_operator())
    client.post("/queues/default/pause")
    paused = Queue.objects.get(name="default").paused
    client.post("/queues/default/resume")
    assert paused and not Queue.objects.get(name="default").paused


def test_queue_settings_are_validated_and_saved():
    client = client_for(make_operator())
    bad = client.post(
        "/queues/default/settings", {"max_attempts": "0", "timeout": "30", "retention": "1 00:00:00"}
    )
    good = client.post(
        "/queues/default/settings",
        {"max_attempts": "9", "timeout": "30", "retention": "1 00:00:00", "concurrency": "2"},
    )
    queue = Queue.objects.get(name="default")
    assert (
        bad.status_code == 400
        and good.status_code == 200
        and (queue.max_attempts, queue.concurrency) == (9, 2)
    )


@pytest.mark.parametrize(
    "setting", [{"timeout": "99999999"}, {"retention": "999999999 00:00:00"}, {"rate_limit": "1e300"}]
)
def test_queue_settings_past_their_limits_are_refused_and_change_nothing(setting):
    form = {"max_attempts": "4", "timeout": "300", "retention": "7 00:00:00", **setting}
    response = client_for(make_operator()).post("/queues/default/settings", form)
    queue = Queue.objects.get(name="default")
    assert (response.status_code, queue.timeout, queue.retention.days, queue.rate_limit) == (
        400,
        300,
        7,
        None,
    )


def test_purge_confirmation_then_purge_deletes_waiting_jobs_only():
    waiting = [make_job() for _ in range(2)]
    done = make_job()
    lifecycle.cancel(done.id)
    client = client_for(make_operator())
    confirm = client.get("/queues/default/purge/confirm")
    client.post("/queues/default/purge")
    assert b"Delete <strong>2</strong> waiting jobs" in confirm.content
    assert (
        not Job.objects.filter(id__in=[j.id for j in waiting]).exists()
        and Job.objects.filter(id=done.id).exists()
    )


def test_creating_a_queue_redirects_to_its_page():
    response = client_for(make_operator()).post(
        "/queues/", {"name": "reports", "max_attempts": "4", "timeout": "300"}
    )
    assert response["HX-Redirect"] == "/queues/reports/" and Queue.objects.filter(name="reports").exists()


def test_a_queue_with_an_invalid_name_is_not_created():
    response = client_for(make_operator()).post(
        "/queues/", {"name": "no spaces", "max_attempts": "4", "timeout": "300"}
    )
    assert response.status_code == 400 and not Queue.objects.filter(name="no spaces").exists()


def test_a_queue_with_a_running_job_cannot_be_deleted():
    make_job(queue="busy")
    start_claimed("w", ["busy"], 1)
    response = client_for(make_operator()).post("/queues/busy/delete")
    assert response.status_code == 409 and b"has running jobs" in response.content
    assert Queue.objects.filter(name="busy").exists() and Job.objects.filter(queue__name="busy").exists()


def test_deleting_a_queue_takes_its_waiting_jobs_with_it_as_the_api_does():
    job = make_job(queue="spare")
    response = client_for(make_operator()).post("/queues/spare/delete")
    assert response["HX-Redirect"] == "/" and not Job.objects.filter(pk=job.pk).exists()


def test_the_create_form_refuses_what_the_api_refuses():
    form = {"name": "reports", "max_attempts": "4", "timeout": "300", "concurrency": "0"}
    console = client_for(make_operator()).post("/queues/", form)
    api = ApiClient().post("/queues", {"name": "reports", "concurrency": 0})
    assert (console.status_code, api.status_code) == (400, 400)
    assert "concurrency must be a whole number from 1 to 100,000" in console.content.decode()
    assert (
        api.json()["errors"][0]["field"] == "concurrency"
        and not Queue.objects.filter(name="reports").exists()
    )


def test_pausing_a_queue_that_does_not_exist_answers_404():
    assert client_for(make_operator()).post("/queues/nope/pause").status_code == 404


def test_an_empty_queue_is_deleted():
    make_queue("spare")
    response = client_for(make_operator()).post("/queues/spare/delete")
    assert response["HX-Redirect"] == "/" and not Queue.objects.filter(name="spare").exists()
