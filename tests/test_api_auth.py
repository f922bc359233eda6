"""REST API authentication: hashed tokens, staff sessions with CSRF."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from queues import auth_tokens
from queues.models import ApiToken, Job

from .api import ApiClient
from .console_helpers import make_operator, make_user, make_viewer
from .factories import make_token

pytestmark = pytest.mark.django_db

ENQUEUE = {"task": "tests.tasks.noop"}


def test_no_credentials_is_401():
    assert ApiClient(token="").get("/jobs").status_code == 401


def test_an_unknown_token_is_401():
    assert ApiClient(token="tw_abc_def").get("/jobs").status_code == 401


def test_a_revoked_token_is_401():
    plain = make_token("ci")
    auth_tokens.revoke("ci")
    assert ApiClient(token=plain).get("/jobs").status_code == 401


def test_a_token_with_the_right_prefix_but_a_wrong_secret_is_401():
    prefix = make_token("ci").split("_")[1]
    assert ApiClient(token=f"tw_{prefix}_wrong").get("/jobs").status_code == 401


def test_only_a_hash_of_the_token_is_stored():
    secret = make_token("ci").split("_", 2)[2]
    assert secret not in ApiToken.objects.get().key_hash


def test_a_token_records_when_it_was_last_used():
    ApiClient(token=make_token("ci")).get("/jobs")
    assert ApiToken.objects.get().last_used_at is not None


def test_an_unauthenticated_post_creates_nothing():
    response = ApiClient(token="").post("/jobs", ENQUEUE)
    assert response.status_code == 401
    assert not Job.objects.exists()


def _session(user: User) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_a_staff_session_with_the_view_permission_may_read():
    assert _session(make_viewer()).get("/api/jobs").status_code == 200


def test_a_non_staff_session_is_403():
    assert _session(make_user("someone", staff=False)).get("/api/jobs").status_code == 403


def test_a_staff_session_post_without_csrf_is_403_and_creates_nothing():
    response = _session(make_operator()).post("/api/jobs", ENQUEUE, content_type="application/json")
    assert response.status_code == 403
    assert not Job.objects.exists()


def test_a_staff_session_post_with_the_csrf_token_is_accepted():
    client = _session(make_operator())
    client.get("/admin/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/api/jobs", ENQUEUE, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 201
