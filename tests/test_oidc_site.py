"""The README's identity-provider settings, word for word, on the real site under daphne."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from queues.models import Job

from .browser import DaphneProcess
from .console_helpers import make_operator, make_viewer
from .identity_provider import JwksServer, SigningKey, claims
from .processes import ROOT, child_env

pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]

SITE = {"DJANGO_SETTINGS_MODULE": "taskweb.settings"}
SECTION = "### Signing in with an identity provider"
KEY = SigningKey.rsa("realm-key")


def readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split(f"\n{SECTION}\n", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def readme_settings() -> dict[str, str]:
    (block,) = [block for block in readme_blocks() if block.startswith("QUEUES_OIDC_ISSUER=")]
    return dict(line.split("=", 1) for line in block.splitlines())


@pytest.fixture(scope="module")
def settings_from_readme() -> Iterator[dict[str, str]]:
    """The README's settings, with the JWKS URL pointing at a provider served here."""
    provider = JwksServer([KEY])
    yield {**readme_settings(), "QUEUES_OIDC_JWKS_URL": provider.url}
    provider.stop()


@pytest.fixture(scope="module")
def site(settings_from_readme, django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[str]:
    with django_db_blocker.unblock():
        daphne = DaphneProcess(tmp_path_factory.mktemp("daphne"), **SITE, **settings_from_readme)
    yield daphne.url
    daphne.stop()


def realm_token(settings: dict[str, str], username: str, *roles: str, **extra) -> str:
    """An access token as Keycloak issues it: realm roles under realm_access.roles."""
    body = claims(username, realm_access={"roles": list(roles)}, **extra)
    body.update(iss=settings["QUEUES_OIDC_ISSUER"], aud=settings["QUEUES_OIDC_AUDIENCE"])
    return KEY.sign(body)


def post_job(site: str, token: str) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{site}/api/jobs",
        data=json.dumps({"task": "taskweb.tasks.send_email", "kwargs": {"to": "a@example.com"}}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_readme_curl_reads_jobs_with_a_token_of_the_readme_provider(site, settings_from_readme):
    make_viewer("vera")
    (curl,) = [line for block in readme_blocks() for line in block.splitlines() if line.startswith("curl ")]
    env = {"JWT": realm_token(settings_from_readme, "vera", "taskweb-read"), "API": f"{site}/api"}
    done = subprocess.run(["bash", "-c", curl], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["items"] == []


def test_an_operator_enqueues_and_a_read_only_user_is_refused_on_the_readme_settings(
    site, settings_from_readme
):
    make_operator("olga")
    make_viewer("vera")
    status, body = post_job(site, realm_token(settings_from_readme, "olga", "taskweb-operate"))
    assert (status, Job.objects.get().pk) == (201, body["id"])
    status, body = post_job(site, realm_token(settings_from_readme, "vera", "taskweb-operate"))
    assert status == 403 and "vera does not have" in body["detail"]
    assert Job.objects.count() == 1


def test_an_expired_token_is_a_json_401_through_daphne(site, settings_from_readme):
    make_operator("olga")
    status, body = post_job(site, realm_token(settings_from_readme, "olga", "taskweb-operate", lifetime=-600))
    assert (status, body) == (401, {"detail": "The token has expired."})
    assert not Job.objects.exists()


DEPLOY_SECTION = "## Signing in to the API with an identity provider"


def deploy_guide_settings() -> list[dict[str, str]]:
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text.split(f"\n{DEPLOY_SECTION}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [dict(line.split("=", 1) for line in block.splitlines()) for block in blocks]


@pytest.mark.parametrize("provider", deploy_guide_settings(), ids=["keycloak", "auth0"])
def test_the_deploy_guides_provider_settings_pass_the_system_check(provider):
    env = child_env(**SITE, **provider)
    done = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
