"""Bearer JWTs from an OpenID Connect identity provider (Keycloak, Auth0, ...) for the REST API.

Off until ``QUEUES_OIDC_ISSUER``, ``QUEUES_OIDC_AUDIENCE`` and ``QUEUES_OIDC_JWKS_URL`` are
all set. A JWT is accepted when it is signed with RS256 or ES256 by a key the provider
publishes at the JWKS URL (chosen by the token's ``kid``), is inside its ``exp``/``nbf``
window (give or take ``QUEUES_OIDC_LEEWAY`` seconds) and names the configured issuer and
audience. Its user claim must name an existing active Django user (unless
``QUEUES_OIDC_CREATE_USERS`` names a group to create users in), and its roles claim one of
the roles ``QUEUES_OIDC_ROLES`` maps to a token scope. The user then acts exactly as a token
of that scope owned by them would (``queues.rules``): their own permissions still apply.

Everything that is wrong with a token is an ``OidcRefused`` whose message says what; only
an unreachable or unusable key set is the provider's fault (503), the rest is the token's (401).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jwt
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from .conf import conf
from .models import TokenScope

ALGORITHMS = ("RS256", "ES256")
"""Public-key signatures only: an HMAC algorithm would let the published key sign tokens."""
JWKS_LIFESPAN = 300.0
"""Seconds the provider's key set is kept before it is fetched again."""
JWKS_COOLDOWN = 30.0
"""A token naming an unknown ``kid`` refetches the key set at most this often (key rotation
is picked up, but a stream of made-up kids cannot make every request a fetch)."""
JWKS_TIMEOUT = 5.0
"""Seconds to wait for the provider's key set before answering 503."""


class OidcRefused(Exception):
    """A bearer JWT that is not accepted: ``status`` and a sentence saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Identity:
    """Who a verified JWT speaks for, and the scope its roles grant."""

    user: Any
    scope: TokenScope

    @property
    def name(self) -> str:
        return self.user.get_username()


def enabled() -> bool:
    return bool(conf.QUEUES_OIDC_ISSUER and conf.QUEUES_OIDC_AUDIENCE and conf.QUEUES_OIDC_JWKS_URL)


def configuration_errors() -> list[str]:
    """What is wrong with the OIDC settings (empty when they are off or consistent)."""
    names = ("QUEUES_OIDC_ISSUER", "QUEUES_OIDC_AUDIENCE", "QUEUES_OIDC_JWKS_URL")
    given = [name for name in names if getattr(conf, name)]
    if not given:
        return []
    errors = []
    if len(given) < len(names):
        missing = ", ".join(name for name in names if name not in given)
        errors.append(f"OIDC sign-in needs {missing} as well as {', '.join(given)}.")
    if conf.QUEUES_OIDC_JWKS_URL and not conf.QUEUES_OIDC_JWKS_URL.startswith(("https://", "http://")):
        errors.append("QUEUES_OIDC_JWKS_URL must be an https:// (or http://) URL.")
    roles = conf.QUEUES_OIDC_ROLES
    if not roles:
        errors.append("QUEUES_OIDC_ROLES maps no role to a scope, so no JWT could do anything.")
    scopes = ", ".join(TokenScope.values)
    for role, scope in roles.items():
        if scope not in TokenScope.values:
            errors.append(f"QUEUES_OIDC_ROLES maps {role!r} to {scope!r}, which is none of {scopes}.")
    field = conf.QUEUES_OIDC_USER_FIELD
    if field not in {f.name for f in get_user_model()._meta.get_fields()}:
        errors.append(f"QUEUES_OIDC_USER_FIELD is {field!r}, which the user model does not have.")
    return errors


def looks_like_jwt(bearer: str) -> bool:
    """Three dot-separated parts: what a JWS in compact form looks like (Taskweb's tokens have none)."""
    return bearer.count(".") == 2


def authenticate(bearer: str) -> Identity:
    """The identity a bearer JWT proves, or OidcRefused saying why it does not."""
    claims = _verified_claims(bearer)
    return Identity(user=_user(claims), scope=_scope(claims))


@lru_cache(maxsize=4)
def _jwks_client(url: str) -> jwt.PyJWKClient:
    # One client (and so one cached key set) per URL, shared by the process's threads.
    return jwt.PyJWKClient(url, lifespan=JWKS_LIFESPAN, cooldown_duration=JWKS_COOLDOWN, timeout=JWKS_TIMEOUT)


def _header(bearer: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(bearer)
    except jwt.DecodeError as exc:
        raise OidcRefused(401, f"The bearer token is not a well-formed JWT: {exc}.") from exc


def _signing_key(header: dict[str, Any]) -> jwt.PyJWK:
    """The provider's key the header's ``kid`` names (the key set is cached; see JWKS_COOLDOWN)."""
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise OidcRefused(
            401, f"The token is signed with {algorithm!r}; only {' and '.join(ALGORITHMS)} are accepted."
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise OidcRefused(401, "The token's header names no signing key (kid).")
    client = _jwks_client(conf.QUEUES_OIDC_JWKS_URL)
    try:
        client.get_signing_keys()  # the cached set, or a fetch: failing here is the provider's fault
    except jwt.PyJWKClientConnectionError as exc:
        raise _unreachable(client) from exc
    except (jwt.PyJWKClientError, jwt.PyJWKSetError, jwt.PyJWKError, jwt.InvalidKeyError, ValueError) as exc:
        message = f"The identity provider's key set at {client.uri} is not usable: {exc}."
        raise OidcRefused(503, message) from exc
    try:
        return client.get_signing_key(kid)  # refetches the set if the kid is new and the cooldown allows
    except jwt.PyJWKClientConnectionError as exc:
        raise _unreachable(client) from exc
    except jwt.PyJWTError as exc:
        raise OidcRefused(401, f"The token is signed by an unknown signing key (kid {kid!r}).") from exc


def _unreachable(client: jwt.PyJWKClient) -> OidcRefused:
    message = f"The identity provider's keys could not be fetched from {client.uri}; try again later."
    return OidcRefused(503, message)


def _verified_claims(bearer: str) -> dict[str, Any]:
    key = _signing_key(_header(bearer))
    issuer, audience = conf.QUEUES_OIDC_ISSUER, conf.QUEUES_OIDC_AUDIENCE
    try:
        return jwt.decode(
            bearer,
            key,
            algorithms=list(ALGORITHMS),
            audience=audience,
            issuer=issuer,
            leeway=conf.QUEUES_OIDC_LEEWAY,
            options={"require": ["exp", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise OidcRefused(401, "The token has expired.") from exc
    except jwt.ImmatureSignatureError as exc:
        raise OidcRefused(401, "The token is not valid yet (its nbf or iat is in the future).") from exc
    except jwt.InvalidAudienceError as exc:
        raise OidcRefused(401, f"Audience mismatch: the token is not meant for {audience!r}.") from exc
    except jwt.InvalidIssuerError as exc:
        raise OidcRefused(401, f"Issuer mismatch: the token was not issued by {issuer!r}.") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise OidcRefused(401, f"The token lacks the {exc.claim!r} claim.") from exc
    except jwt.InvalidSignatureError as exc:
        raise OidcRefused(401, "The token's signature does not verify with the key its kid names.") from exc
    except jwt.InvalidTokenError as exc:
        raise OidcRefused(401, f"The token is not valid: {exc}.") from exc


def _claim(claims: dict[str, Any], name: str) -> Any:
    """A claim by its name, or by a dotted path into nested claims (``realm_access.roles``).

    The whole name is tried first: namespaced claims (Auth0's ``https://example.com/roles``)
    contain dots of their own."""
    if name in claims:
        return claims[name]
    value: Any = claims
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _user(claims: dict[str, Any]) -> Any:
    claim, field = conf.QUEUES_OIDC_USER_CLAIM, conf.QUEUES_OIDC_USER_FIELD
    value = _claim(claims, claim)
    if not isinstance(value, str) or not value.strip():
        raise OidcRefused(401, f"The token has no {claim!r} claim naming its user.")
    lookup = f"{field}__iexact" if field == "email" else field
    users = list(get_user_model()._default_manager.filter(**{lookup: value})[:2])
    if len(users) > 1:
        raise OidcRefused(401, f"Several users have the {field} {value!r}; match on a unique field instead.")
    if not users:
        if conf.QUEUES_OIDC_CREATE_USERS:
            return _create_user(field, value)
        raise OidcRefused(401, f"No user has the {field} {value!r} (from the token's {claim!r} claim).")
    user = users[0]
    if not user.is_active:
        raise OidcRefused(401, f"The user {user.get_username()!r} is deactivated.")
    return user


def _create_user(field: str, value: str) -> Any:
    """A new active staff user for ``value``, in the group QUEUES_OIDC_CREATE_USERS names (whose
    permissions are all it has), without a password: it signs in only through the provider."""
    model = get_user_model()
    user = model(is_staff=True, is_active=True, **{field: value, model.USERNAME_FIELD: value})
    user.set_unusable_password()
    try:
        with transaction.atomic():
            group, _ = Group.objects.get_or_create(name=conf.QUEUES_OIDC_CREATE_USERS)
            user.save()
            user.groups.add(group)
    except IntegrityError as exc:  # another request created it a moment ago, or the name is taken
        raise OidcRefused(401, f"No user could be created for {value!r}: {exc}; try again.") from exc
    return user


def _scope(claims: dict[str, Any]) -> TokenScope:
    """The widest scope the token's roles map to (a list, or one space-separated string)."""
    claim, mapping = conf.QUEUES_OIDC_ROLES_CLAIM, conf.QUEUES_OIDC_ROLES
    roles = _claim(claims, claim)
    if isinstance(roles, str):
        roles = roles.split()
    if not isinstance(roles, list):
        roles = []
    scopes = [TokenScope(mapping[role]) for role in roles if isinstance(role, str) and role in mapping]
    if not scopes:
        known = ", ".join(sorted(mapping)) or "none"
        raise OidcRefused(
            403, f"The token's {claim!r} claim holds none of the roles Taskweb maps to a scope ({known})."
        )
    return max(scopes, key=lambda scope: scope.rank)
