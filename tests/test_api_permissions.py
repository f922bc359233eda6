"""REST API permissions: every endpoint needs the action ``queues.rules`` names for it,
for sessions as in the console, and for tokens within their scope and their owner's rights."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from queues import lifecycle, rules
from queues.api import api as ninja_api
from queues.api.security import OidcBearer, StaffSession, TokenAuth
from queues.models import DeadLetter, Job, Queue, Schedule
from queues.workflows import workflow

from . import tasks
from .api import ApiClient
from .console_helpers import make_operator, make_user, make_viewer
from .factories import make_dead_job, make_job, make_queue, make_token

pytestmark = pytest.mark.django_db

READS = ["/jobs", "/jobs/{job}", "/queues", "/queues/mail", "/dead-letters", "/workers", "/schedules"]
READS += ["/schedules/{schedule}", "/stats"]

SCHEDULE = {"name": "nightly", "cron": "0 3 * * *", "task": "tests.tasks.noop"}
MUTATIONS: list[tuple[str, str, str, Any]] = [
    ("job.enqueue", "post", "/jobs", {"task": "tests.tasks.noop"}),
    ("job.cancel", "post", "/jobs/{job}/cancel", None),
    ("job.retry", "post", "/jobs/{dead}/retry", None),
    ("dead.replay", "post", "/dead-letters/{letter}/replay", None),
    ("dead.replay", "post", "/dead-letters/replay", {}),
    ("job.delete", "delete", "/dead-letters/{letter}", None),
    ("queue.pause", "post", "/queues/mail/pause", None),
    ("queue.pause", "post", "/queues/mail/resume", None),
    ("queue.add", "post", "/queues", {"name": "fresh"}),
    ("queue.change", "patch", "/queues/mail", {"concurrency": 2}),
    ("queue.purge", "post", "/queues/mail/purge", None),
    ("queue.delete", "delete", "/queues/spare", None),
    ("schedule.add", "post", "/schedules", SCHEDULE),
    ("schedule.change", "patch", "/schedules/{schedule}", {"enabled": False}),
    ("schedule.delete", "delete", "/schedules/{schedule}", None),
    ("schedule.run", "post", "/schedules/{schedule}/run", None),
    ("workflow.enqueue", "post", "/workflows", {"steps": [{"name": "a", "task": "tests.tasks.noop"}]}),
    ("workflow.cancel", "post", "/workflows/{workflow}/cancel", None),
    ("job.retry", "post", "/workflows/{workflow}/steps/done/retry", None),
]
OPERATE = [m for m in MUTATIONS if rules.RULES[m[0]].scope == "operate"]
ADMIN = [m for m in MUTATIONS if rules.RULES[m[0]].scope == "admin"]


def _id(mutation: tuple[str, str, str, Any]) -> str:
    return f"{mutation[1].upper()} {mutation[2]}"


@pytest.fixture
def ids() -> dict[str, int]:
    """One of everything, so that each mutation above succeeds when it is allowed."""
    dead = make_dead_job()
    job = make_job(queue="mail")
    make_queue("spare")
    schedule = Schedule.objects.create(
        name="hourly", cron="@hourly", task_path="tests.tasks.noop", queue=Queue.objects.get(name="default")
    )
    letter = DeadLetter.objects.get(job=dead)
    run = workflow(tasks.noop.s().set(name="done"), tasks.noop.s().set(name="waiting")).enqueue()
    lifecycle.cancel(run.job_ids["done"])
    ids = {"job": job.pk, "dead": dead.pk, "letter": letter.pk, "schedule": schedule.pk}
    return {**ids, "workflow": run.id}


def snapshot() -> tuple:
    """Everything the mutations above could change."""
    return (
        sorted(Job.objects.values_list("id", "status", "attempts")),
        sorted(Queue.objects.values_list("name", "paused", "concurrency")),
        sorted(Schedule.objects.values_list("name", "enabled")),
        sorted(DeadLetter.objects.values_list("id", "replayed_at")),
    )


class Session:
    """A logged-in browser session calling the API with the CSRF header, as the console does."""

    def __init__(self, user: User) -> None:
        self.client = Client(enforce_csrf_checks=True)
        self.client.force_login(user)
        # Any 32-character secret works as the cookie, as long as the header repeats it.
        self.csrf = "c" * 32
        self.client.cookies["csrftoken"] = self.csrf

    def send(self, method: str, path: str, body: Any = None) -> Any:
        call = getattr(self.client, method)
        if method == "get":
            return call(f"/api{path}")
        data = "" if body is None else body
        return call(f"/api{path}", data, content_type="application/json", headers={"X-CSRFToken": self.csrf})


class Token:
    def __init__(self, plain: str) -> None:
        self.api = ApiClient(token=plain)

    def send(self, method: str, path: str, body: Any = None) -> Any:
        return self.api.get(path) if method == "get" else self.api.send(method, path, body)


def call(door: Session | Token, mutation: tuple[str, str, str, Any], ids: dict[str, int]) -> Any:
    _, method, path, body = mutation
    return door.send(method, path.format(**ids), body)


# --- sessions -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", READS)
def test_a_read_only_session_may_read_everything(ids, path):
    assert Session(make_viewer()).send("get", path.format(**ids)).status_code == 200


@pytest.mark.parametrize("mutation", MUTATIONS, ids=_id)
def test_a_read_only_session_is_refused_every_change_and_nothing_changes(ids, mutation):
    before = snapshot()
    response = call(Session(make_viewer()), mutation, ids)
    assert (response.status_code, snapshot()) == (403, before)
    assert rules.RULES[mutation[0]].permission in response.json()["detail"]


def test_a_staff_session_without_permissions_may_not_even_read():
    response = Session(make_user("bare")).send("get", "/jobs")
    assert response.status_code == 403
    assert "bare lacks the queues.view_job permission" in response.json()["detail"]


def test_a_session_with_the_change_permission_may_cancel(ids):
    user = make_user("clerk", perms=("view_job", "change_job"))
    assert call(Session(user), MUTATIONS[1], ids).status_code == 200


def test_a_session_with_the_change_permission_may_not_purge(ids):
    user = make_user("clerk", perms=("view_job", "change_job"))
    response = Session(user).send("post", "/queues/mail/purge")
    assert response.status_code == 403
    assert response.json()["detail"] == (
        "queue.purge needs the queues.delete_job permission, which clerk does not have."
    )


@pytest.mark.parametrize("mutation", MUTATIONS, ids=_id)
def test_a_superuser_session_may_make_every_change(ids, mutation):
    assert call(Session(make_operator()), mutation, ids).status_code < 300


# --- tokens: scopes -----------------------------------------------------------------------


@pytest.mark.parametrize("path", READS)
def test_a_read_scope_token_may_read_everything(ids, path):
    assert Token(make_token(scope="read")).send("get", path.format(**ids)).status_code == 200


@pytest.mark.parametrize("mutation", MUTATIONS, ids=_id)
def test_a_read_scope_token_is_refused_every_change_and_nothing_changes(ids, mutation):
    before = snapshot()
    response = call(Token(make_token(scope="read")), mutation, ids)
    assert (response.status_code, snapshot()) == (403, before)
    assert "has the read scope" in response.json()["detail"]


@pytest.mark.parametrize("mutation", OPERATE, ids=_id)
def test_an_operate_scope_token_may_enqueue_cancel_retry_replay_pause_resume_and_run(ids, mutation):
    assert call(Token(make_token(scope="operate")), mutation, ids).status_code < 300


@pytest.mark.parametrize("mutation", ADMIN, ids=_id)
def test_an_operate_scope_token_is_refused_admin_changes_and_nothing_changes(ids, mutation):
    before = snapshot()
    response = call(Token(make_token(scope="operate")), mutation, ids)
    assert (response.status_code, snapshot()) == (403, before)
    assert f"{mutation[0]} needs the admin scope" in response.json()["detail"]


@pytest.mark.parametrize("mutation", ADMIN, ids=_id)
def test_an_admin_scope_token_may_change_queues_and_schedules(ids, mutation):
    assert call(Token(make_token(scope="admin")), mutation, ids).status_code < 300


# --- tokens: the owner's rights ------------------------------------------------------------


def test_an_admin_scope_token_of_a_read_only_owner_may_read(ids):
    assert Token(make_token(user=make_viewer(), scope="admin")).send("get", "/jobs").status_code == 200


@pytest.mark.parametrize("mutation", MUTATIONS, ids=_id)
def test_an_admin_scope_token_of_a_read_only_owner_is_refused_every_change(ids, mutation):
    before = snapshot()
    response = call(Token(make_token(user=make_viewer(), scope="admin")), mutation, ids)
    assert (response.status_code, snapshot()) == (403, before)
    assert "can do no more than its owner: " in response.json()["detail"]


def test_a_token_loses_a_permission_the_moment_its_owner_does(ids):
    owner = make_user("clerk", perms=("view_job", "change_job"))
    token = Token(make_token(user=owner, scope="operate"))
    assert call(token, MUTATIONS[2], ids).status_code == 200  # retry
    owner.user_permissions.remove(Permission.objects.get(codename="change_job"))
    response = call(token, MUTATIONS[1], ids)  # cancel
    assert response.status_code == 403
    assert "job.cancel needs the queues.change_job permission, which clerk" in response.json()["detail"]


def test_a_token_stops_reading_the_moment_its_owner_loses_staff_status(ids):
    owner = make_viewer("ops")
    token = Token(make_token(user=owner, scope="read"))
    User.objects.filter(pk=owner.pk).update(is_staff=False)
    response = token.send("get", "/jobs")
    assert (response.status_code, "ops is not an active staff user" in response.json()["detail"]) == (
        403,
        True,
    )


def test_a_token_of_a_deactivated_owner_is_401(ids):
    owner = make_viewer("ops")
    token = Token(make_token(user=owner, scope="read"))
    User.objects.filter(pk=owner.pk).update(is_active=False)
    assert token.send("get", "/jobs").status_code == 401


# --- every endpoint declares what it needs ------------------------------------------------


def _operations() -> list[tuple[str, str, Any]]:
    return [
        (method, path, operation)
        for router in ninja_api._get_bound_routers()
        for path, view in router.path_operations.items()
        for operation in view.operations
        for method in operation.methods
    ]


def test_every_endpoint_declares_an_action_of_the_rule_table():
    for method, path, operation in _operations():
        kinds = [type(auth) for auth in operation.auth_callbacks]
        assert kinds == [TokenAuth, OidcBearer, StaffSession], f"{method} {path}"
        assert {auth.action for auth in operation.auth_callbacks} <= rules.RULES.keys(), f"{method} {path}"


def test_only_reading_endpoints_need_no_more_than_the_view_permission():
    for method, path, operation in _operations():
        reads = {auth.action for auth in operation.auth_callbacks} == {rules.READ}
        assert reads == (method == "GET"), f"{method} {path}"
