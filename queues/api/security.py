"""Who may call the API: a bearer token, an identity provider's bearer JWT, or a staff
user's session (the console's calls).

Every endpoint declares the action it performs with ``auth=requires(action)``; the
action's rule in ``queues.rules`` decides, for sessions exactly as in the console and
for tokens and JWTs within their scope and their user's permissions. A refusal is a 403
whose ``detail`` names the missing permission or scope; a JWT that is not accepted is a
401 saying why (503 when the provider's keys cannot be fetched).

Session calls that change something must carry the CSRF token, as any Django form
does; token calls need none, since a browser never sends the token on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja.errors import AuthenticationError, AuthorizationError, HttpError
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from .. import auth_tokens, bounds, oidc, rules, storable
from ..conf import conf
from ..models import ApiToken


class TokenAuth(HttpBearer):
    """``Authorization: Bearer tw_...`` with a live token created by taskctl or the admin."""

    def __init__(self, action: str) -> None:
        self.action = action
        super().__init__()

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = auth_tokens.authenticate(token)
        if found is not None and (reason := rules.token_refusal(found, self.action)):
            raise AuthorizationError(403, reason)
        return found


class OidcBearer(HttpBearer):
    """``Authorization: Bearer <JWT>`` from the identity provider QUEUES_OIDC_* names (when set)."""

    openapi_bearerFormat = "JWT"
    openapi_description = (
        "A JWT from the identity provider named by QUEUES_OIDC_ISSUER (when configured): "
        "its user claim names a Taskweb user, its roles claim a scope."
    )

    def __init__(self, action: str) -> None:
        self.action = action
        super().__init__()

    def authenticate(self, request: HttpRequest, token: str) -> oidc.Identity | None:
        if not (oidc.enabled() and oidc.looks_like_jwt(token)):
            return None
        try:
            identity = oidc.authenticate(token)
        except oidc.OidcRefused as refused:
            if refused.status == 401:
                raise AuthenticationError(401, str(refused)) from refused
            raise HttpError(refused.status, str(refused)) from refused
        credential = f"The identity provider's token for {identity.name}"
        if reason := rules.scoped_refusal(credential, identity.scope, identity.user, self.action):
            raise AuthorizationError(403, reason)
        return identity


class StaffSession(APIKeyCookie):
    """A logged-in staff user's session cookie, with Django's CSRF check on unsafe methods."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self, action: str) -> None:
        self.action = action
        super().__init__()

    def _get_key(self, request: HttpRequest) -> str | None:
        # The CSRF check runs in authenticate, once we know a session is being used:
        # a caller with neither token nor session gets 401, not a CSRF 403.
        return request.COOKIES.get(self.param_name)

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if reason := rules.refusal(user, self.action):
            raise AuthorizationError(403, reason)
        if check_csrf(request) is not None:
            raise AuthorizationError(
                403, "CSRF check failed: send the csrftoken cookie's value as X-CSRFToken."
            )
        return user


def requires(action: str) -> list[TokenAuth | OidcBearer | StaffSession]:
    """An endpoint's ``auth``: who may perform ``action`` (a key of ``queues.rules.RULES``)."""
    if action not in rules.RULES:
        raise KeyError(f"{action!r} is not an action in queues.rules.RULES")
    return [TokenAuth(action), OidcBearer(action), StaffSession(action)]


class Undeclared:
    """The API's default auth: an endpoint that forgot ``requires`` is refused to everyone."""

    def __call__(self, request: HttpRequest) -> None:
        raise AuthorizationError(403, "This endpoint declares no permission, so nobody may call it.")


def reveals(request: HttpRequest) -> bool:
    """Whether the caller (token or session) may read encrypted payloads in the clear."""
    return rules.sees_payloads(getattr(request, "auth", None))


def actor(request: HttpRequest) -> str:
    """A name for who did something, stored e.g. as a dead letter's replayed_by."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, ApiToken):
        return f"token:{auth.name}"
    if isinstance(auth, oidc.Identity):
        return f"oidc:{auth.name}"
    return getattr(auth, "username", "") or "api"


def _unstorable(body: bytes) -> str | None:
    """Why a JSON body cannot be stored as sent, or None (unparsable bodies: ninja says so)."""
    try:
        storable.loads(body, depth=bounds.MAX_DEPTH + 1)  # the body's own object is one level
    except storable.Unstorable as exc:
        return str(exc)
    except ValueError:
        return None
    return None


def _json_error(status: int, detail: str, field: str | None = None) -> JsonResponse:
    body: dict[str, Any] = {"detail": detail}
    if field:
        body["errors"] = [{"field": field, "message": detail}]
    return JsonResponse(body, status=status)


def guard_body(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """413 for a body over QUEUES_API_MAX_BODY; 400 for input no database can store, and for
    a query parameter given twice (every one the API takes is a single value: reading only
    the first would accept a request whose second value is invalid)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        limit = conf.QUEUES_API_MAX_BODY
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        try:
            too_big = declared > limit or len(request.body) > limit
        except RequestDataTooBig:
            too_big = True
        if too_big:
            return _json_error(413, f"The request body is larger than {limit} bytes.")
        if "\x00" in request.path or any("\x00" in v for _, values in request.GET.lists() for v in values):
            return _json_error(400, "NUL characters are not allowed in URLs.", "query")
        if repeated := sorted(name for name, values in request.GET.lists() if len(values) > 1):
            message = f"The query parameter {repeated[0]!r} is given more than once."
            return _json_error(400, message, repeated[0])
        if request.body and (reason := _unstorable(request.body)):
            return _json_error(400, f"The request body cannot be stored: {reason}.", "body")
        return view(request, *args, **kwargs)

    return wrapper
