"""The Django admin: every model listed, job submission, and the lifecycle actions."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from queues import lifecycle, values
from queues.models import ApiToken, DeadLetter, Job, Queue, Schedule, Worker
from queues.states import Status

from .console_helpers import make_user, make_viewer
from .factories import make_job, make_token, start_claimed

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("boss", password="pw"))
    return client


def dead_job() -> Job:
    job = make_job("tests.tasks.fail")
    (claimed,) = start_claimed("w", None, 1)
    now = timezone.now()
    lifecycle.finish("w", [values.Finished(claimed, "failed", now, now, error_type="E", retryable=False)])
    return job


SUBMIT = {
    "task": "tests.tasks.add",
    "queue_name": "default",
    "args_json": "[1, 2]",
    "kwargs_json": "{}",
    "priority_value": "high",
}


@pytest.mark.parametrize(
    "model",
    [
        "queue",
        "job",
        "deadletter",
        "attempt",
        "worker",
        "schedule",
        "schedulerun",
        "lease",
        "minutestat",
        "apitoken",
        "circuit",
        "runtimebucket",
    ],
)
def test_every_model_has_a_working_list_page(admin_client, model):
    make_job()
    assert admin_client.get(f"/admin/queues/{model}/").status_code == 200


def test_the_job_list_filters_by_status(admin_client):
    make_job()
    assert admin_client.get("/admin/queues/job/", {"status__exact": "dead"}).context["cl"].result_count == 0


def test_the_submit_form_offers_the_registered_tasks(admin_client):
    choices = dict(
        admin_client.get("/admin/queues/job/add/").context["adminform"].form.fields["task"].choices
    )
    assert "tests.tasks.add" in choices


def test_submitting_a_job_enqueues_it_through_the_lifecycle(admin_client):
    response = admin_client.post("/admin/queues/job/add/", SUBMIT)
    job = Job.objects.get()
    assert (response.status_code, job.args, job.priority, job.status) == (302, [1, 2], 10, Status.QUEUED)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("args_json", "[1, "),
        ("args_json", '{"a": 1}'),
        ("args_json", "[NaN]"),
        ("kwargs_json", "[1]"),
        ("priority_value", "999"),
        ("task", "tests.tasks.missing"),
        ("queue_name", "typo"),
        ("max_attempts_value", "1000000000000"),
        ("timeout_value", "99999999999"),
        ("delay", "1e300"),
        ("args_json", "[" * 1000 + "]" * 1000),
        ("kwargs_json", '{"a": ' + "[" * 40 + "]" * 40 + "}"),
    ],
)
def test_submitting_bad_input_shows_the_error_and_enqueues_nothing(admin_client, field, value):
    response = admin_client.post("/admin/queues/job/add/", {**SUBMIT, field: value})
    assert (response.status_code, field in response.context["adminform"].form.errors) == (200, True)
    assert not Job.objects.exists()


def test_a_job_cannot_be_edited_by_hand(admin_client):
    job = make_job()
    admin_client.post(f"/admin/queues/job/{job.pk}/change/", {"status": "succeeded"})
    assert Job.objects.get(pk=job.pk).status == Status.QUEUED


def test_the_cancel_action_cancels_through_the_lifecycle(admin_client):
    job = make_job()
    admin_client.post("/admin/queues/job/", {"action": "cancel", "_selected_action": [job.pk]})
    assert Job.objects.get(pk=job.pk).status == Status.CANCELLED


def test_the_retry_action_reports_jobs_it_cannot_retry(admin_client):
    job = make_job()
    response = admin_client.post(
        "/admin/queues/job/", {"action": "retry", "_selected_action": [job.pk]}, follow=True
    )
    assert "Cannot retry job" in response.content.decode()


def test_the_replay_action_replays_dead_jobs(admin_client):
    job = dead_job()
    admin_client.post("/admin/queues/job/", {"action": "replay", "_selected_action": [job.pk]})
    assert (Job.objects.get(pk=job.pk).status, DeadLetter.objects.get().replayed_by) == (
        Status.QUEUED,
        "boss",
    )


def test_the_dead_letter_replay_action(admin_client):
    job = dead_job()
    letter = DeadLetter.objects.get()
    admin_client.post("/admin/queues/deadletter/", {"action": "replay", "_selected_action": [letter.pk]})
    assert Job.objects.get(pk=job.pk).status == Status.QUEUED


def _viewer_client() -> Client:
    client = Client()
    client.force_login(make_viewer())
    return client


@pytest.mark.parametrize(
    ("changelist", "action"),
    [
        ("job", "retry"),
        ("job", "cancel"),
        ("job", "replay"),
        ("deadletter", "replay"),
        ("queue", "pause"),
        ("queue", "resume"),
        ("queue", "purge"),
    ],
)
def test_a_read_only_user_is_offered_no_action(changelist, action):
    dead_job()  # a job, a dead letter and a queue: every list has a row to act on
    page = _viewer_client().get(f"/admin/queues/{changelist}/").content.decode()
    assert "<tbody>" in page and f'value="{action}"' not in page


def test_a_read_only_user_cannot_purge_a_queue_through_the_admin():
    job = make_job()
    _viewer_client().post("/admin/queues/queue/", {"action": "purge", "_selected_action": [job.queue_id]})
    assert Job.objects.get(pk=job.pk).status == Status.QUEUED


def test_a_read_only_user_cannot_cancel_a_job_through_the_admin():
    job = make_job()
    _viewer_client().post("/admin/queues/job/", {"action": "cancel", "_selected_action": [job.pk]})
    assert Job.objects.get(pk=job.pk).status == Status.QUEUED


def test_the_queue_pause_action(admin_client):
    queue = Queue.objects.get(name="default")
    admin_client.post("/admin/queues/queue/", {"action": "pause", "_selected_action": [queue.pk]})
    assert Queue.objects.get(pk=queue.pk).paused


def test_a_schedule_with_a_bad_cron_is_refused(admin_client):
    form = {"name": "s", "cron": "99 * * * *", "time_zone": "UTC", "task_path": "tests.tasks.noop"}
    form |= {"args": "[]", "kwargs": "{}", "queue": Queue.objects.get().pk, "priority": 0, "enabled": "on"}
    response = admin_client.post("/admin/queues/schedule/add/", form)
    assert "cron" in response.context["adminform"].form.errors
    assert not Schedule.objects.exists()


def _add_token(client: Client, **form: object) -> object:
    return client.post("/admin/queues/apitoken/add/", {"name": "ci", "scope": "read", **form}, follow=True)


def test_creating_a_token_shows_it_once_and_stores_a_hash(admin_client):
    response = _add_token(admin_client, user=User.objects.get(username="boss").pk)
    token = ApiToken.objects.get()
    shown = [str(m) for m in response.context["messages"] if "only time" in str(m)]
    assert len(shown) == 1 and token.key_hash not in shown[0] and f"tw_{token.prefix}_" in shown[0]


def test_the_token_form_sets_the_owner_and_the_scope(admin_client):
    ops = make_user("ops")
    _add_token(admin_client, user=ops.pk, scope="operate")
    assert ApiToken.objects.values_list("user__username", "scope").get() == ("ops", "operate")


def test_a_token_without_an_owner_is_refused(admin_client):
    response = _add_token(admin_client, user="")
    assert "user" in response.context["adminform"].form.errors
    assert not ApiToken.objects.exists()


def test_a_staff_user_who_is_not_a_superuser_may_create_tokens_only_for_themselves(admin_client):
    clerk = make_user("clerk", perms=("add_apitoken", "view_apitoken"))
    client = Client()
    client.force_login(clerk)
    response = _add_token(client, user=User.objects.get(username="boss").pk, scope="admin")
    assert "user" in response.context["adminform"].form.errors
    assert not ApiToken.objects.exists()


def test_the_token_list_shows_owner_and_scope(admin_client):
    make_token("ci", scope="operate")
    page = admin_client.get("/admin/queues/apitoken/").content.decode()
    assert "token-owner" in page and "Operate" in page


def test_a_schedule_that_never_comes_due_is_refused(admin_client):
    form = {"name": "s", "cron": "0 0 31 2 *", "time_zone": "UTC", "task_path": "tests.tasks.noop"}
    form |= {"args": "[]", "kwargs": "{}", "queue": Queue.objects.get().pk, "priority": 0, "enabled": "on"}
    response = admin_client.post("/admin/queues/schedule/add/", form)
    assert "cron" in response.context["adminform"].form.errors


def test_a_valid_schedule_is_saved_with_its_next_run_planned(admin_client):
    form = {"name": "s", "cron": "@hourly", "time_zone": "UTC", "task_path": "tests.tasks.noop"}
    form |= {"args": "[]", "kwargs": "{}", "queue": Queue.objects.get().pk, "priority": 0, "enabled": "on"}
    admin_client.post("/admin/queues/schedule/add/", form)
    assert Schedule.objects.get().next_run_at.minute == 0


def test_a_schedule_with_arguments_nested_too_deep_is_refused(admin_client):
    form = {"name": "s", "cron": "@hourly", "time_zone": "UTC", "task_path": "tests.tasks.noop"}
    form |= {"args": "[" * 5000 + "]" * 5000, "kwargs": "{}", "queue": Queue.objects.get().pk, "priority": 0}
    response = admin_client.post("/admin/queues/schedule/add/", form)
    assert "nest more than 32 levels" in str(response.context["adminform"].form.errors["args"])
    assert not Schedule.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"), [("concurrency", "10000000"), ("retention", "999999999 00:00:00")]
)
def test_a_queue_setting_past_its_limit_is_refused(admin_client, field, value):
    queue = Queue.objects.get(name="default")
    form = {"max_attempts": 4, "timeout": 300, "retention": "7 00:00:00", field: value}
    response = admin_client.post(f"/admin/queues/queue/{queue.pk}/change/", form)
    assert field in response.context["adminform"].form.errors
    assert Queue.objects.get(pk=queue.pk).retention.days == 7


# --- deletes go through the lifecycle ------------------------------------------------


def running_job(queue: str = "default") -> Job:
    job = make_job(queue=queue)
    start_claimed("w", [queue], 1)
    return job


def test_the_admin_refuses_to_delete_a_running_job_and_says_why(admin_client):
    job = running_job()
    response = admin_client.post(f"/admin/queues/job/{job.pk}/delete/", {"post": "yes"})
    assert b"is running: cancel it" in response.content
    assert Job.objects.filter(pk=job.pk, status=Status.RUNNING).exists()


def test_delete_selected_with_a_running_job_among_them_deletes_nothing(admin_client):
    busy = running_job()
    idle = make_job()
    form = {"action": "delete_selected", "_selected_action": [idle.pk, busy.pk], "post": "yes"}
    response = admin_client.post("/admin/queues/job/", form)
    assert f"Job #{busy.pk} is running".encode() in response.content
    assert Job.objects.filter(pk__in=[idle.pk, busy.pk]).count() == 2


def test_the_admin_deletes_a_finished_job_with_its_history(admin_client):
    job = dead_job()
    admin_client.post(f"/admin/queues/job/{job.pk}/delete/", {"post": "yes"})
    assert (
        not Job.objects.filter(pk=job.pk).exists() and not DeadLetter.objects.filter(job_id=job.pk).exists()
    )


def test_the_admin_refuses_to_delete_a_queue_with_a_running_job(admin_client):
    running_job(queue="busy")
    queue = Queue.objects.get(name="busy")
    response = admin_client.post(f"/admin/queues/queue/{queue.pk}/delete/", {"post": "yes"})
    assert b"Queue busy has running jobs" in response.content
    assert Queue.objects.filter(name="busy").exists() and Job.objects.filter(queue=queue).exists()


def test_the_admin_deletes_an_idle_queue_with_its_waiting_jobs(admin_client):
    job = make_job(queue="spare")
    queue = Queue.objects.get(name="spare")
    admin_client.post(f"/admin/queues/queue/{queue.pk}/delete/", {"post": "yes"})
    assert not Queue.objects.filter(name="spare").exists() and not Job.objects.filter(pk=job.pk).exists()


def test_the_admin_never_deletes_the_default_queue(admin_client):
    queue = Queue.objects.get(name="default")
    response = admin_client.post(f"/admin/queues/queue/{queue.pk}/delete/", {"post": "yes"})
    assert b"default queue" in response.content and Queue.objects.filter(name="default").exists()


def test_deleting_a_dead_letter_in_the_admin_discards_its_dead_job(admin_client):
    job = dead_job()
    letter = DeadLetter.objects.get(job=job)
    admin_client.post(f"/admin/queues/deadletter/{letter.pk}/delete/", {"post": "yes"})
    assert not Job.objects.filter(pk=job.pk).exists()


def test_worker_rows_cannot_be_deleted_in_the_admin(admin_client):
    lifecycle.register_worker(Worker(id="w1", hostname="h", pid=1, concurrency=1))
    response = admin_client.post("/admin/queues/worker/w1/delete/", {"post": "yes"})
    assert response.status_code == 403 and Worker.objects.filter(id="w1").exists()


def test_a_queue_made_in_the_admin_goes_through_the_lifecycle_checks(admin_client):
    form = {"name": "made", "max_attempts": "3", "timeout": "60", "retention": "1 00:00:00"}
    admin_client.post("/admin/queues/queue/add/", form)
    form = {"name": "made", "max_attempts": "3", "timeout": "60", "retention": "0"}
    admin_client.post("/admin/queues/queue/add/", {**form, "name": "bad"})
    assert Queue.objects.get(name="made").max_attempts == 3 and not Queue.objects.filter(name="bad").exists()
