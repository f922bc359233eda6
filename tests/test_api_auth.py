"""REST API authentication: hashed tokens, staff sessions with CSRF."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from queues import auth_tokens
from queues.models import ApiToken, Job

from .api import ApiClient

pytestmark = pytest.mark.django_db

ENQUEUE = {"task": "tests.tasks.noop"}


def test_no_credentials_is_401():
    assert ApiClient(token="").get("/jobs").status_code == 401


def test_an_unknown_token_is_401():
    assert ApiClient(token="tw_abc_def").get("/jobs").status_code == 401


def test_a_revoked_token_is_401():
    new = auth_tokens.create_token("ci")
    auth_tokens.revoke(new.token.prefix)
    assert ApiClient(token=new.plain).get("/jobs").status_code == 401


def test_a_token_with_the_right_prefix_but_a_wrong_secret_is_401():
    new = auth_tokens.create_token("ci")
    assert ApiClient(token=f"tw_{new.token.prefix}_wrong").get("/jobs").status_code == 401


def test_only_a_hash_of_the_token_is_stored():
    new = auth_tokens.create_token("ci")
    secret = new.plain.split("_", 2)[2]
    assert secret not in ApiToken.objects.filter(pk=new.token.pk).values_list("key_hash", flat=True)[0]


def test_a_token_records_when_it_was_last_used():
    new = auth_tokens.create_token("ci")
    ApiClient(token=new.plain).get("/jobs")
    new.token.refresh_from_db()
    assert new.token.last_used_at is not None


def test_an_unauthenticated_post_creates_nothing():
    response = ApiClient(token="").post("/jobs", ENQUEUE)
    assert response.status_code == 401
    assert not Job.objects.exists()


def _session(is_staff: bool) -> Client:
    user = User.objects.create_user("someone", password="pw", is_staff=is_staff)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_a_staff_session_may_read():
    assert _session(is_staff=True).get("/api/jobs").status_code == 200


def test_a_non_staff_session_is_403():
    assert _session(is_staff=False).get("/api/jobs").status_code == 403


def test_a_staff_session_post_without_csrf_is_403_and_creates_nothing():
    response = _session(is_staff=True).post("/api/jobs", ENQUEUE, content_type="application/json")
    assert response.status_code == 403
    assert not Job.objects.exists()


def test_a_staff_session_post_with_the_csrf_token_is_accepted():
    client = _session(is_staff=True)
    client.get("/admin/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.post(
        "/api/jobs", ENQUEUE, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert response.status_code == 201
