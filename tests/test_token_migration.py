"""Migrations 0005/0006: tokens made before owners and scopes keep working, within a superuser's rights."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from queues.models import ApiToken

from .migrating import migrate, schema_at

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("queues", "0004_operations")]
AFTER = [("queues", "0006_token_owner_required")]


@pytest.fixture
def old_apps() -> Iterator[Any]:
    """The schema before tokens had owners and scopes; the latest one again afterwards."""
    yield from schema_at(BEFORE)


def _old_token(apps: Any, name: str, user: Any = None) -> None:
    apps.get_model("queues", "ApiToken").objects.create(name=name, prefix=name, key_hash="x", user=user)


def test_an_ownerless_token_goes_to_the_first_active_superuser_with_the_admin_scope(old_apps):
    User = old_apps.get_model("auth", "User")
    User.objects.create(username="retired", is_superuser=True, is_staff=True, is_active=False)
    User.objects.create(username="root", is_superuser=True, is_staff=True)
    User.objects.create(username="root2", is_superuser=True, is_staff=True)
    _old_token(old_apps, "ci")
    migrate(AFTER)
    assert ApiToken.objects.values_list("name", "user__username", "scope").get() == ("ci", "root", "admin")


def test_a_token_with_an_owner_keeps_it_and_gets_the_admin_scope(old_apps):
    ops = old_apps.get_model("auth", "User").objects.create(username="ops", is_staff=True)
    _old_token(old_apps, "deploy", user=ops)
    migrate(AFTER)
    assert ApiToken.objects.values_list("user__username", "scope").get() == ("ops", "admin")


def test_an_ownerless_token_is_deleted_when_no_superuser_could_own_it(old_apps):
    ops = old_apps.get_model("auth", "User").objects.create(username="ops", is_staff=True)
    _old_token(old_apps, "ci")
    _old_token(old_apps, "deploy", user=ops)
    migrate(AFTER)
    assert list(ApiToken.objects.values_list("name", flat=True)) == ["deploy"]
