"""API tokens: created once in plain text, stored only as a hash, revocable.

A token reads ``tw_<prefix>_<secret>``. The prefix finds the row with an index
lookup; only the SHA-256 of the secret is kept, so a leaked database does not
leak working tokens. The REST API and the TCP protocol both check tokens here.

Every token has an owner and a scope; what it may do is decided by ``queues.rules``
on each use, from the owner's permissions as they are at that moment.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from .models import ApiToken, TokenScope

PREFIX = "tw"


class TokenError(ValueError):
    """A token operation was given something that does not name a token."""


@dataclass(frozen=True)
class NewToken:
    """A token just created: ``plain`` is shown once and never stored."""

    token: ApiToken
    plain: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_token(name: str, user: Any, scope: str = TokenScope.READ) -> NewToken:
    """A new token acting for ``user`` (an active staff user) within ``scope``."""
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise TokenError("A token needs a name of 1 to 100 characters.")
    if scope not in TokenScope.values:
        raise TokenError(f"A token's scope is one of {', '.join(TokenScope.values)}, not {scope!r}.")
    if user is None:
        raise TokenError("A token needs an owner: it acts with that user's permissions.")
    if not (user.is_active and user.is_staff):
        raise TokenError(
            f"{user.get_username()} is not an active staff user; a token of theirs could do nothing."
        )
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        name=name, prefix=prefix, key_hash=_digest(secret), user=user, scope=scope
    )
    return NewToken(token, f"{PREFIX}_{prefix}_{secret}")


def default_owner() -> Any:
    """The owner of a token created without one named: the only active superuser."""
    superusers = list(get_user_model().objects.filter(is_superuser=True, is_active=True)[:2])
    if not superusers:
        raise TokenError("Name the token's owner with --user: there is no active superuser to default to.")
    if len(superusers) > 1:
        raise TokenError("Name the token's owner with --user: there are several active superusers.")
    return superusers[0]


def _live() -> Any:
    """Tokens that still work: not revoked, owner not deactivated."""
    return ApiToken.objects.filter(revoked_at=None, user__is_active=True).select_related("user")


def authenticate(plain: str | None) -> ApiToken | None:
    """The live token ``plain`` stands for, or None; records when it was last used."""
    parts = (plain or "").strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    token = _live().filter(prefix=parts[1]).first()
    if token is None or not hmac.compare_digest(token.key_hash, _digest(parts[2])):
        return None
    now = timezone.now()
    # One write per minute at most: a busy client must not turn every request into an UPDATE.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def live(token_id: int) -> ApiToken | None:
    """The token with this id as it is now (owner and permissions re-read), or None if it stopped working."""
    return _live().filter(pk=token_id).first()


def revoke(prefix_or_name: str) -> list[ApiToken]:
    """Revoke the live token with this prefix (or every live token with this name)."""
    live = ApiToken.objects.filter(revoked_at=None)
    tokens = list(live.filter(prefix=prefix_or_name)) or list(live.filter(name=prefix_or_name))
    if not tokens:
        raise TokenError(f"No live token has the prefix or name {prefix_or_name!r}.")
    ApiToken.objects.filter(pk__in=[t.pk for t in tokens]).update(revoked_at=timezone.now())
    return tokens
