"""Which open console sockets may no longer watch, checked for all sockets of a process at once.

A socket is checked when it opens; after that its user may lose staff status or the
view permission, be deactivated, log out, or change their password (which ends their
other sessions). The poller asks here about every socket it feeds, at most once a
second, with two queries whatever the number of sockets: one for the users still
allowed, one for the sessions still alive; and a third for those who may see encrypted
payloads in the clear (``revealing``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.contrib.auth.models import Permission
from django.contrib.sessions.backends.db import SessionStore as DbSessionStore
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.module_loading import import_string

from ..rules import RULES, VIEW, is_operator

MODEL_BACKEND_ONLY = ["django.contrib.auth.backends.ModelBackend"]
PAYLOADS = RULES["payload.view"].permission
Key = TypeVar("Key")


@dataclass(frozen=True)
class Viewer:
    """Who opened a socket, and with which session."""

    user_id: int
    session_key: str


def refused(viewers: Mapping[Key, Viewer]) -> set[Key]:
    """The keys of ``viewers`` (one per socket) whose user or session no longer allows watching."""
    if not viewers:
        return set()
    users = _operators({viewer.user_id for viewer in viewers.values()})
    sessions = _sessions({viewer.session_key for viewer in viewers.values()})
    return {
        key
        for key, viewer in viewers.items()
        if not _logged_in(sessions.get(viewer.session_key), users.get(viewer.user_id))
    }


def revealing(viewers: Mapping[Key, Viewer]) -> set[Key]:
    """The keys of ``viewers`` whose user may see encrypted payloads in the clear
    (``rules.sees_payloads``), in one query whatever the number of sockets."""
    if not viewers:
        return set()
    users = _operators({viewer.user_id for viewer in viewers.values()}, also=PAYLOADS)
    return {key for key, viewer in viewers.items() if viewer.user_id in users}


def _operators(user_ids: set[int], also: str | None = None) -> dict[int, Any]:
    """The users among ``user_ids`` who are active staff with the view permission (and the
    permission ``also``, when given)."""
    User = get_user_model()
    candidates = User.objects.filter(pk__in=user_ids, is_active=True, is_staff=True)
    if _permission_backends() != MODEL_BACKEND_ONLY:
        # Another backend may grant permissions from anywhere: ask it, once per user.
        return {
            user.pk: user
            for user in candidates
            if is_operator(user) and (also is None or user.has_perm(also))
        }
    # ModelBackend's rule in one query: superuser, or each permission directly or by a group.
    allowed = candidates.filter(_granted(User, VIEW))
    if also is not None:
        allowed = allowed.filter(_granted(User, also))
    return {user.pk: user for user in allowed}


def _granted(User: Any, permission: str) -> Q:
    """Users who hold ``permission`` by ModelBackend's rule: superusers, directly, or by a group."""
    app_label, codename = permission.split(".")
    held = Permission.objects.filter(content_type__app_label=app_label, codename=codename)
    direct = User.user_permissions.through.objects.filter(user_id=OuterRef("pk"), permission__in=held)
    by_group = User.groups.through.objects.filter(user_id=OuterRef("pk"), group__permissions__in=held)
    return Q(is_superuser=True) | Exists(direct) | Exists(by_group)


def _permission_backends() -> list[str]:
    """The backends that may grant permissions. Django asks only those with ``has_perm``, so
    an authentication-only one (django-axes' login throttle) changes nothing here."""
    return [path for path in settings.AUTHENTICATION_BACKENDS if hasattr(import_string(path), "has_perm")]


def _sessions(keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The data of the sessions among ``keys`` that still exist."""
    store = import_module(settings.SESSION_ENGINE).SessionStore
    if issubclass(store, DbSessionStore):  # the db and cached_db engines: one query
        rows = store.get_model_class().objects.filter(session_key__in=keys, expire_date__gt=timezone.now())
        return {key: store().decode(data) for key, data in rows.values_list("session_key", "session_data")}
    return {key: data for key in keys if (data := store(key).load())}


def _logged_in(session: dict[str, Any] | None, user: Any) -> bool:
    """Django's own test (``auth.get_user``): the session names this user, with their current hash."""
    if session is None or user is None or session.get(SESSION_KEY) != str(user.pk):
        return False
    stored = session.get(HASH_SESSION_KEY)
    if not stored:
        return False
    hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    return any(constant_time_compare(stored, known) for known in hashes)
