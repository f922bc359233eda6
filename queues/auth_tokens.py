"""API tokens: created once in plain text, stored only as a hash, revocable.

A token reads ``tw_<prefix>_<secret>``. The prefix finds the row with an index
lookup; only the SHA-256 of the secret is kept, so a leaked database does not
leak working tokens. The REST API and the TCP protocol both check tokens here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from .models import ApiToken

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


def create_token(name: str, user: Any = None) -> NewToken:
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise TokenError("A token needs a name of 1 to 100 characters.")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(name=name, prefix=prefix, key_hash=_digest(secret), user=user)
    return NewToken(token, f"{PREFIX}_{prefix}_{secret}")


def authenticate(plain: str | None) -> ApiToken | None:
    """The live token ``plain`` stands for, or None; records when it was last used."""
    parts = (plain or "").strip().split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX:
        return None
    token = ApiToken.objects.filter(prefix=parts[1], revoked_at=None).select_related("user").first()
    if token is None or not hmac.compare_digest(token.key_hash, _digest(parts[2])):
        return None
    if token.user is not None and not token.user.is_active:
        return None
    now = timezone.now()
    # One write per minute at most: a busy client must not turn every request into an UPDATE.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token


def revoke(prefix_or_name: str) -> list[ApiToken]:
    """Revoke the live token with this prefix (or every live token with this name)."""
    live = ApiToken.objects.filter(revoked_at=None)
    tokens = list(live.filter(prefix=prefix_or_name)) or list(live.filter(name=prefix_or_name))
    if not tokens:
        raise TokenError(f"No live token has the prefix or name {prefix_or_name!r}.")
    ApiToken.objects.filter(pk__in=[t.pk for t in tokens]).update(revoked_at=timezone.now())
    return tokens
