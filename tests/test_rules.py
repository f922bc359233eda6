"""The one table of who may do what: scopes nest, and the owner's rights cap every token."""

from __future__ import annotations

import pytest

from queues import auth_tokens, rules
from queues.models import ApiToken, TokenScope

from .console_helpers import make_operator, make_user, make_viewer

pytestmark = pytest.mark.django_db


def _scope_actions(scope: TokenScope) -> set[str]:
    return {action for action, rule in rules.RULES.items() if rule.scope == scope}


def test_the_read_scope_covers_reading_only():
    assert _scope_actions(TokenScope.READ) == {rules.READ, "payload.view"}  # reading encrypted payloads


def test_only_a_user_with_view_payloads_sees_encrypted_payloads_in_the_clear():
    reader = make_user("reader", perms=("view_job", "view_payloads"))
    assert rules.sees_payloads(reader)
    assert not rules.sees_payloads(make_viewer())
    assert not rules.sees_payloads(make_user("outsider", staff=False, perms=("view_job", "view_payloads")))


def test_a_token_sees_encrypted_payloads_when_its_owner_does():
    reader = make_user("reader", perms=("view_job", "view_payloads"))
    assert rules.sees_payloads(auth_tokens.create_token("r", user=reader, scope=TokenScope.READ).token)
    viewer = make_viewer()
    assert not rules.sees_payloads(auth_tokens.create_token("v", user=viewer, scope=TokenScope.ADMIN).token)


def test_the_operate_scope_covers_the_day_to_day_work():
    assert _scope_actions(TokenScope.OPERATE) == {
        "job.enqueue",
        "job.cancel",
        "job.retry",
        "job.work",
        "dead.replay",
        "queue.pause",
        "circuit.close",
        "schedule.run",
        "workflow.enqueue",
        "workflow.cancel",
    }


def test_the_admin_scope_adds_changing_queues_deleting_and_managing_schedules():
    assert _scope_actions(TokenScope.ADMIN) == {
        "job.delete",
        "queue.add",
        "queue.change",
        "queue.purge",
        "queue.delete",
        "schedule.add",
        "schedule.change",
        "schedule.delete",
    }


def _allowed(token: ApiToken) -> set[str]:
    return {action for action in rules.RULES if rules.token_refusal(token, action) is None}


def test_each_scope_allows_everything_the_narrower_ones_allow():
    owner = make_operator()
    read, operate, admin = (
        _allowed(auth_tokens.create_token(scope, user=owner, scope=scope).token) for scope in TokenScope
    )
    assert read < operate < admin == set(rules.RULES)


def test_a_token_never_allows_more_than_its_owner():
    owner = make_viewer()
    token = auth_tokens.create_token("wide", user=owner, scope=TokenScope.ADMIN).token
    assert _allowed(token) == {rules.READ} == {a for a in rules.RULES if rules.can(owner, a)}


def test_the_operator_role_of_the_readme_operates_and_edits_but_neither_creates_nor_destroys():
    perms = ("view_job", "add_job", "change_job", "change_queue", "change_schedule")
    operate = _scope_actions(TokenScope.OPERATE) | {"queue.change", "schedule.change"}
    assert rules.allowed_actions(make_user("ops", perms=perms)) == operate
