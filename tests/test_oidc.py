"""REST API sign-in with an identity provider's JWTs: real key pairs, a JWKS served over HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from queues import oidc
from queues.models import DeadLetter, Job

from . import servers
from .api import ApiClient
from .console_helpers import make_operator, make_user, make_viewer
from .factories import make_dead_job
from .identity_provider import AUDIENCE, ISSUER, JwksServer, SigningKey, claims

pytestmark = pytest.mark.django_db

ENQUEUE = {"task": "tests.tasks.noop"}
RSA = SigningKey.rsa("rsa-1")
EC = SigningKey.ec("ec-1")


@pytest.fixture
def provider(settings) -> Iterator[JwksServer]:
    """A provider publishing RSA and EC keys, and Taskweb configured to trust it."""
    server = JwksServer([RSA, EC])
    settings.QUEUES_OIDC_ISSUER = ISSUER
    settings.QUEUES_OIDC_AUDIENCE = AUDIENCE
    settings.QUEUES_OIDC_JWKS_URL = server.url
    yield server
    server.stop()


def api(token: str) -> ApiClient:
    return ApiClient(token=token)


def refusal(response) -> tuple[int, str]:
    return response.status_code, response.json()["detail"]


def test_a_valid_token_of_a_read_only_user_reads(provider):
    make_viewer("vera")
    assert api(RSA.sign(claims("vera", "taskweb-read"))).get("/jobs").status_code == 200


def test_a_valid_token_of_an_operator_enqueues(provider):
    make_operator("olga")
    response = api(RSA.sign(claims("olga", "taskweb-operate"))).post("/jobs", ENQUEUE)
    assert response.status_code == 201
    assert Job.objects.get().pk == response.json()["id"]


def test_an_es256_token_is_accepted(provider):
    make_viewer("vera")
    assert api(EC.sign(claims("vera", "taskweb-read"))).get("/jobs").status_code == 200


def test_a_replayed_dead_letter_records_the_user_of_the_token(provider):
    make_operator("olga")
    letter = DeadLetter.objects.get(job=make_dead_job())
    token = RSA.sign(claims("olga", "taskweb-operate"))
    assert api(token).post(f"/dead-letters/{letter.pk}/replay").status_code == 200
    letter.refresh_from_db()
    assert letter.replayed_by == "oidc:olga"


def test_an_expired_token_is_401(provider):
    make_viewer("vera")
    response = api(RSA.sign(claims("vera", "taskweb-read", lifetime=-120))).get("/jobs")
    assert refusal(response) == (401, "The token has expired.")


def test_a_token_expired_within_the_leeway_is_still_accepted(provider, settings):
    settings.QUEUES_OIDC_LEEWAY = 60
    make_viewer("vera")
    assert api(RSA.sign(claims("vera", "taskweb-read", lifetime=-20))).get("/jobs").status_code == 200


def test_a_token_not_valid_yet_is_401(provider):
    make_viewer("vera")
    token = RSA.sign(claims("vera", "taskweb-read", nbf=int(claims("x")["iat"]) + 600))
    assert refusal(api(token).get("/jobs")) == (
        401,
        "The token is not valid yet (its nbf or iat is in the future).",
    )


def test_a_token_for_another_audience_is_401(provider):
    make_viewer("vera")
    response = api(RSA.sign(claims("vera", "taskweb-read", aud="billing"))).get("/jobs")
    assert refusal(response) == (401, "Audience mismatch: the token is not meant for 'taskweb'.")


def test_a_token_from_another_issuer_is_401(provider):
    make_viewer("vera")
    response = api(RSA.sign(claims("vera", "taskweb-read", iss="https://evil.example.com"))).get("/jobs")
    assert refusal(response) == (401, f"Issuer mismatch: the token was not issued by {ISSUER!r}.")


def test_a_token_without_an_expiry_is_401(provider):
    make_viewer("vera")
    body = claims("vera", "taskweb-read")
    del body["exp"]
    assert refusal(api(RSA.sign(body)).get("/jobs")) == (401, "The token lacks the 'exp' claim.")


def test_a_token_signed_by_a_key_the_provider_does_not_publish_is_401(provider):
    make_operator("olga")
    impostor = SigningKey.rsa("rsa-1")  # claims the provider's kid
    response = api(impostor.sign(claims("olga", "taskweb-operate"))).post("/jobs", ENQUEUE)
    assert refusal(response) == (401, "The token's signature does not verify with the key its kid names.")
    assert not Job.objects.exists()


def test_a_token_naming_an_unknown_key_is_401(provider):
    make_viewer("vera")
    response = api(SigningKey.rsa("rsa-9").sign(claims("vera", "taskweb-read"))).get("/jobs")
    assert refusal(response) == (401, "The token is signed by an unknown signing key (kid 'rsa-9').")


def test_a_token_naming_no_key_is_401(provider):
    make_viewer("vera")
    token = jwt.encode(claims("vera", "taskweb-read"), RSA.private, algorithm="RS256")
    assert refusal(api(token).get("/jobs")) == (401, "The token's header names no signing key (kid).")


def _unsigned(body: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT', 'kid': RSA.kid})}.{part(body)}."


def test_an_unsigned_token_is_401_and_changes_nothing(provider):
    make_operator("olga")
    response = api(_unsigned(claims("olga", "taskweb-operate"))).post("/jobs", ENQUEUE)
    assert refusal(response) == (401, "The token is signed with 'none'; only RS256 and ES256 are accepted.")
    assert not Job.objects.exists()


def test_an_hs256_token_keyed_with_the_public_key_is_401_and_changes_nothing(provider):
    make_operator("olga")
    public_pem = RSA.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # The classic confusion: an HMAC keyed with the published key, which anyone can compute.
    signature = jwt.algorithms.HMACAlgorithm(jwt.algorithms.HMACAlgorithm.SHA256)
    header = {"alg": "HS256", "typ": "JWT", "kid": RSA.kid}
    segments = [
        base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=")
        for value in (header, claims("olga", "taskweb-operate"))
    ]
    mac = signature.sign(b".".join(segments), public_pem)
    token = b".".join([*segments, base64.urlsafe_b64encode(mac).rstrip(b"=")]).decode()
    response = api(token).post("/jobs", ENQUEUE)
    assert refusal(response) == (401, "The token is signed with 'HS256'; only RS256 and ES256 are accepted.")
    assert not Job.objects.exists()


def test_a_malformed_token_is_401(provider):
    assert refusal(api("not.a.jwt").get("/jobs"))[0] == 401
    assert refusal(api("not.a.jwt").get("/jobs"))[1].startswith("The bearer token is not a well-formed JWT")


def test_a_token_for_an_unknown_user_is_401_and_creates_no_user(provider):
    response = api(RSA.sign(claims("mallory", "taskweb-read"))).get("/jobs")
    assert refusal(response) == (
        401,
        "No user has the username 'mallory' (from the token's 'preferred_username' claim).",
    )
    assert not User.objects.filter(username="mallory").exists()


def test_a_token_for_a_deactivated_user_is_401(provider):
    user = make_viewer("vera")
    user.is_active = False
    user.save()
    response = api(RSA.sign(claims("vera", "taskweb-read"))).get("/jobs")
    assert refusal(response) == (401, "The user 'vera' is deactivated.")


def test_a_read_only_user_may_not_mutate_whatever_role_the_token_claims(provider):
    make_viewer("vera")
    response = api(RSA.sign(claims("vera", "taskweb-operate"))).post("/jobs", ENQUEUE)
    assert refusal(response) == (
        403,
        "The identity provider's token for vera can do no more than its owner: "
        "job.enqueue needs the queues.add_job permission, which vera does not have.",
    )
    assert not Job.objects.exists()


def test_a_token_with_the_read_role_may_not_mutate_even_for_an_operator(provider):
    make_operator("olga")
    response = api(RSA.sign(claims("olga", "taskweb-read"))).post("/jobs", ENQUEUE)
    assert refusal(response) == (
        403,
        "The identity provider's token for olga has the read scope; job.enqueue needs the operate scope.",
    )
    assert not Job.objects.exists()


def test_a_token_without_a_mapped_role_is_403(provider):
    make_viewer("vera")
    response = api(RSA.sign(claims("vera", "offline_access"))).get("/jobs")
    assert refusal(response) == (
        403,
        "The token's 'roles' claim holds none of the roles Taskweb maps to a scope "
        "(taskweb-admin, taskweb-operate, taskweb-read).",
    )


def test_a_user_without_staff_status_is_403(provider):
    make_user("sam", staff=False, perms=("view_job",))
    response = api(RSA.sign(claims("sam", "taskweb-read"))).get("/jobs")
    assert response.status_code == 403


def test_users_may_be_matched_by_email_case_insensitively(provider, settings):
    settings.QUEUES_OIDC_USER_CLAIM = "email"
    settings.QUEUES_OIDC_USER_FIELD = "email"
    make_viewer("vera")
    User.objects.filter(username="vera").update(email="vera@example.com")
    token = RSA.sign(claims("someone-else", "taskweb-read", email="Vera@Example.com"))
    assert api(token).get("/jobs").status_code == 200


def test_roles_may_come_from_a_nested_claim_as_keycloak_sends_them(provider, settings):
    settings.QUEUES_OIDC_ROLES_CLAIM = "realm_access.roles"
    make_viewer("vera")
    token = RSA.sign(claims("vera", realm_access={"roles": ["taskweb-read", "offline_access"]}))
    assert api(token).get("/jobs").status_code == 200


def test_roles_may_come_from_a_namespaced_claim_as_auth0_sends_them(provider, settings):
    settings.QUEUES_OIDC_ROLES_CLAIM = "https://taskweb.example.com/roles"
    make_viewer("vera")
    token = RSA.sign(claims("vera", **{"https://taskweb.example.com/roles": ["taskweb-read"]}))
    assert api(token).get("/jobs").status_code == 200


def test_unknown_users_are_created_in_the_named_group_when_asked(provider, settings):
    settings.QUEUES_OIDC_CREATE_USERS = "sso-readers"
    assert api(RSA.sign(claims("newcomer", "taskweb-read"))).get("/jobs").status_code == 403
    user = User.objects.get(username="newcomer")
    assert (user.is_active, user.is_staff, user.has_usable_password()) == (True, True, False)
    assert [group.name for group in user.groups.all()] == ["sso-readers"]


def test_a_created_user_acts_with_the_permissions_of_their_group(provider, settings):
    settings.QUEUES_OIDC_CREATE_USERS = "sso-readers"
    Group.objects.create(name="sso-readers").permissions.add(Permission.objects.get(codename="view_job"))
    assert api(RSA.sign(claims("newcomer", "taskweb-read"))).get("/jobs").status_code == 200


def test_an_unreachable_key_set_is_503_not_500(settings):
    settings.QUEUES_OIDC_ISSUER = ISSUER
    settings.QUEUES_OIDC_AUDIENCE = AUDIENCE
    settings.QUEUES_OIDC_JWKS_URL = f"http://127.0.0.1:{servers.reserve_port()}/certs"  # nobody listens
    make_viewer("vera")
    status, detail = refusal(api(RSA.sign(claims("vera", "taskweb-read"))).get("/jobs"))
    assert status == 503
    assert detail.startswith("The identity provider's keys could not be fetched from http://127.0.0.1:")


def test_a_key_set_that_is_not_json_is_503(provider):
    provider.body = b"<html>maintenance</html>"
    make_viewer("vera")
    status, detail = refusal(api(RSA.sign(claims("vera", "taskweb-read"))).get("/jobs"))
    assert status == 503
    assert detail.startswith(f"The identity provider's key set at {provider.url} is not usable")


def test_the_key_set_is_fetched_once_and_then_served_from_the_cache(provider):
    make_viewer("vera")
    for _ in range(3):
        assert api(RSA.sign(claims("vera", "taskweb-read"))).get("/jobs").status_code == 200
    assert provider.requests == 1


def test_a_stream_of_unknown_kids_does_not_refetch_the_key_set_each_time(provider):
    make_viewer("vera")
    for n in range(5):
        api(SigningKey.rsa(f"made-up-{n}").sign(claims("vera", "taskweb-read"))).get("/jobs")
    assert provider.requests == 1


def test_a_key_the_provider_adds_later_is_fetched_when_a_token_names_it(provider, monkeypatch):
    monkeypatch.setattr(oidc, "JWKS_COOLDOWN", 0)  # read when the key set's client is created
    make_viewer("vera")
    assert api(RSA.sign(claims("vera", "taskweb-read"))).get("/jobs").status_code == 200
    rotated = SigningKey.rsa("rsa-2")
    provider.keys.append(rotated)
    assert api(rotated.sign(claims("vera", "taskweb-read"))).get("/jobs").status_code == 200
    assert provider.requests == 2


def test_without_settings_a_jwt_is_just_an_unknown_token(settings):
    make_viewer("vera")
    assert refusal(api(RSA.sign(claims("vera", "taskweb-read"))).get("/jobs")) == (401, "Unauthorized")


def test_taskwebs_own_tokens_still_work_with_sign_in_configured(provider):
    assert ApiClient().get("/jobs").status_code == 200


def test_the_openapi_schema_declares_the_jwt_bearer_scheme(provider):
    document = ApiClient().get("/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["OidcBearer"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    assert {"OidcBearer": []} in document["paths"]["/api/jobs"]["get"]["security"]


def test_half_configured_sign_in_fails_the_system_check(settings):
    settings.QUEUES_OIDC_ISSUER = ISSUER
    with pytest.raises(SystemCheckError, match="needs QUEUES_OIDC_AUDIENCE, QUEUES_OIDC_JWKS_URL"):
        call_command("check")


def test_a_role_mapped_to_no_scope_fails_the_system_check(provider, settings):
    settings.QUEUES_OIDC_ROLES = {"taskweb-boss": "boss"}
    with pytest.raises(SystemCheckError, match="maps 'taskweb-boss' to 'boss', which is none of"):
        call_command("check")
