"""TASKWEB_PRODUCTION=1 on a real daphne: HTTPS only (but for probes), HSTS, secure cookies,
and refusals of what would make a production site unsafe."""

from __future__ import annotations

import http.client
import subprocess
from collections.abc import Iterator

import pytest

from .browser import DaphneProcess
from .processes import run_python

pytestmark = [pytest.mark.process, pytest.mark.django_db]
PROFILE = {
    "TASKWEB_PRODUCTION": "1",
    "SECRET_KEY": "production-profile-test-key-with-more-than-fifty-characters-0123",
    "DEBUG": "0",
    "ALLOWED_HOSTS": "127.0.0.1",
}


@pytest.fixture(scope="module")
def site(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[DaphneProcess]:
    with django_db_blocker.unblock():
        daphne = DaphneProcess(tmp_path_factory.mktemp("daphne"), **PROFILE)
    yield daphne
    daphne.stop()


def get(site: DaphneProcess, path: str, **headers: str) -> http.client.HTTPResponse:
    """A request as nginx passes it on; ``X_Forwarded_Proto="https"`` for one that came in over TLS."""
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=15)
    conn.request("GET", path, headers={key.replace("_", "-"): value for key, value in headers.items()})
    response = conn.getresponse()
    response.read()
    return response


def manage_check(tmp_path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``manage.py check`` with the profile, on a database of its own (the test's stays untouched)."""
    env.setdefault("DATABASE_URL", f"sqlite:///{tmp_path}/check.sqlite3")
    return run_python("manage.py", "check", *args, timeout=120, **{**PROFILE, **env})


def test_a_plain_http_request_is_redirected_to_https(site):
    response = get(site, "/login/")
    assert (response.status, response.getheader("Location")) == (301, f"https://127.0.0.1:{site.port}/login/")


@pytest.mark.parametrize("path", ["/health", "/metrics"])
def test_health_and_metrics_answer_probes_over_plain_http(site, path):
    assert get(site, path).status == 200


def test_an_https_answer_carries_hsts_for_a_year_with_subdomains_and_preload(site):
    response = get(site, "/login/", X_Forwarded_Proto="https")
    assert (response.status, response.getheader("Strict-Transport-Security")) == (
        200,
        "max-age=31536000; includeSubDomains; preload",
    )


def test_the_csrf_cookie_is_sent_over_https_only(site):
    cookie = get(site, "/login/", X_Forwarded_Proto="https").getheader("Set-Cookie")
    assert cookie.startswith("csrftoken=") and "; Secure" in cookie


def test_the_profile_refuses_to_start_with_debug_on(tmp_path):
    done = manage_check(tmp_path, DEBUG="1")
    assert done.returncode == 1 and "DEBUG must be off when TASKWEB_PRODUCTION is on" in done.stderr


def test_the_profile_refuses_to_start_without_a_secret_key_in_the_environment(tmp_path):
    done = manage_check(tmp_path, SECRET_KEY="")
    assert done.returncode == 1 and "TASKWEB_PRODUCTION needs SECRET_KEY in the environment" in done.stderr


def test_turning_hsts_preload_and_subdomains_off_is_a_decision_check_deploy_accepts(tmp_path):
    done = manage_check(
        tmp_path,
        "--deploy",
        "--fail-level",
        "WARNING",
        SECURE_HSTS_PRELOAD="0",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="0",
    )
    assert done.returncode == 0, done.stdout + done.stderr
