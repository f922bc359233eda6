"""Login throttling (django-axes) on the console's and the admin's login pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import F

from bench import cluster

from .browser import DaphneProcess
from .console_helpers import PASSWORD, client_for, make_operator
from .processes import run_python

pytestmark = pytest.mark.django_db
LIMIT = settings.AXES_FAILURE_LIMIT


def log_in(username: str, password: str, address: str = "10.0.0.1", url: str = "/login/"):
    client = client_for(None)
    response = client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)
    response.logged_in = "sessionid" in client.cookies
    return response


def fail(
    times: int, username: str = "alice", addresses: list[str] | None = None, url: str = "/login/"
) -> list[int]:
    """``times`` wrong passwords, each from its own address unless ``addresses`` are given."""
    addresses = addresses or [f"10.0.1.{n}" for n in range(times)]
    return [log_in(username, "wrong", addresses[n], url).status_code for n in range(times)]


def age_failures(by: timedelta) -> None:
    """As if the recorded failures had happened ``by`` earlier."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - by)


def test_failures_for_one_username_lock_it_out_whatever_the_address():
    make_operator("alice")
    assert fail(LIMIT) == [200] * (LIMIT - 1) + [429]
    response = log_in("alice", PASSWORD, "10.0.2.1")
    assert (response.status_code, response.logged_in) == (429, False)


def test_failures_from_one_address_lock_it_out_for_every_username():
    make_operator("bob")
    for n in range(LIMIT):
        log_in(f"guess{n}", "wrong", "10.0.3.1")
    response = log_in("bob", PASSWORD, "10.0.3.1")
    assert (response.status_code, response.logged_in) == (429, False)


def test_the_lockout_page_says_why_and_for_how_long():
    make_operator("alice")
    fail(LIMIT)
    text = " ".join(log_in("alice", PASSWORD, "10.0.2.1").content.decode().split())
    assert "Too many failed logins for alice or from your address" in text
    assert "refused for 15m 0s after the last failure, even with the right password" in text


def test_other_users_from_other_addresses_are_unaffected():
    make_operator("alice")
    make_operator("carol")
    fail(LIMIT, "alice")
    response = log_in("carol", PASSWORD, "10.0.4.1")
    assert (response.status_code, response.logged_in) == (302, True)


def test_the_lock_expires_after_the_lockout_period():
    make_operator("alice")
    fail(LIMIT)
    age_failures(settings.AXES_COOLOFF_TIME)
    response = log_in("alice", PASSWORD, "10.0.2.1")
    assert (response.status_code, response.logged_in) == (302, True)


def test_a_lock_not_yet_expired_still_holds():
    make_operator("alice")
    fail(LIMIT)
    age_failures(settings.AXES_COOLOFF_TIME - timedelta(seconds=30))
    assert log_in("alice", PASSWORD, "10.0.2.1").status_code == 429


def test_a_successful_login_clears_earlier_failures():
    make_operator("alice")
    fail(LIMIT - 1)
    assert log_in("alice", PASSWORD, "10.0.2.1").logged_in
    assert fail(LIMIT - 1) == [200] * (LIMIT - 1)
    assert log_in("alice", PASSWORD, "10.0.2.1").logged_in


def test_the_admin_login_is_throttled_too():
    make_operator("alice")
    assert fail(LIMIT, url="/admin/login/")[-1] == 429
    response = log_in("alice", PASSWORD, "10.0.2.1", url="/admin/login/")
    assert (response.status_code, response.logged_in) == (429, False)


def manage(*args: str) -> None:
    done = run_python("manage.py", *args)
    assert done.returncode == 0, done.stderr


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", [("axes_reset_username", "alice"), ("axes_reset",)])
def test_an_operator_lifts_a_username_lock_with_a_command(command):
    make_operator("alice")
    fail(LIMIT)
    manage(*command)
    response = log_in("alice", PASSWORD, "10.0.2.1")
    assert (response.status_code, response.logged_in) == (302, True)


@pytest.mark.django_db(transaction=True)
def test_an_operator_lifts_an_address_lock_with_axes_reset_ip():
    make_operator("alice")
    for n in range(LIMIT):
        log_in(f"guess{n}", "wrong", "203.0.113.7")
    assert log_in("alice", PASSWORD, "203.0.113.7").status_code == 429
    manage("axes_reset_ip", "203.0.113.7")
    assert log_in("alice", PASSWORD, "203.0.113.7").logged_in


# --- through daphne, as the site is served -------------------------------------------------


@pytest.fixture(scope="module")
def site(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[str]:
    """The real site under daphne, run as the web unit runs it (``--proxy-headers``): the
    browser's address comes from the X-Forwarded-For header nginx sets, which the test sets."""
    with django_db_blocker.unblock():
        daphne = DaphneProcess(
            tmp_path_factory.mktemp("daphne"), "--proxy-headers", DJANGO_SETTINGS_MODULE="taskweb.settings"
        )
    yield daphne.url
    daphne.stop()


def http_log_in(site: str, username: str, password: str, address: str) -> tuple[int, bool]:
    """The console's login form over HTTP from a browser at ``address``: status, and whether
    it gave a session."""
    status, cookies = cluster.try_log_in(site, username, password, headers={"X-Forwarded-For": address})
    return status, "sessionid" in cookies


@pytest.mark.process
@pytest.mark.django_db(transaction=True)
def test_through_daphne_failures_for_one_username_lock_it_out_whatever_the_address(site):
    make_operator("alice")
    make_operator("carol")
    failures = [http_log_in(site, "alice", "wrong", f"198.51.100.{n}")[0] for n in range(LIMIT)]
    assert failures == [200] * (LIMIT - 1) + [429]
    assert http_log_in(site, "alice", PASSWORD, "198.51.100.200") == (429, False)
    assert http_log_in(site, "carol", PASSWORD, "198.51.100.201") == (302, True)


@pytest.mark.process
@pytest.mark.django_db(transaction=True)
def test_through_daphne_failures_from_one_address_lock_it_out_for_every_username(site):
    make_operator("bob")
    for n in range(LIMIT):
        http_log_in(site, f"guess{n}", "wrong", "203.0.113.9")
    assert http_log_in(site, "bob", PASSWORD, "203.0.113.9") == (429, False)
    assert http_log_in(site, "bob", PASSWORD, "203.0.113.10") == (302, True)
