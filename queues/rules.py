"""Who may do what, at every door: console, REST API (session or token), TCP protocol, live sockets.

One table names every action with the Django permission a user needs for it and the
narrowest token scope that allows it. A user may act when they are an active staff
user with the view permission and the action's permission; a token may act when its
scope reaches the action's scope *and* its owner may act. Nothing is cached here, so
a permission taken from a user (or staff status, or the account) is gone from their
next request and from every token they own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .models import ApiToken, TokenScope

READ = "view"
"""The action every page, list and detail needs: reading anything."""


@dataclass(frozen=True)
class Rule:
    permission: str
    """The Django permission a user needs."""
    scope: TokenScope
    """The narrowest token scope that may do it."""


RULES: dict[str, Rule] = {
    READ: Rule("queues.view_job", TokenScope.READ),
    # reading encrypted arguments, results and errors in the clear (queues.encryption)
    "payload.view": Rule("queues.view_payloads", TokenScope.READ),
    # operate: run the work day to day
    "job.enqueue": Rule("queues.add_job", TokenScope.OPERATE),
    "job.retry": Rule("queues.change_job", TokenScope.OPERATE),
    "job.cancel": Rule("queues.change_job", TokenScope.OPERATE),
    "job.work": Rule("queues.change_job", TokenScope.OPERATE),  # TCP DEQUEUE, ACK, NACK
    "dead.replay": Rule("queues.change_job", TokenScope.OPERATE),
    "queue.pause": Rule("queues.change_queue", TokenScope.OPERATE),  # pause and resume
    "circuit.close": Rule("queues.change_queue", TokenScope.OPERATE),
    "schedule.run": Rule("queues.change_schedule", TokenScope.OPERATE),
    "workflow.enqueue": Rule("queues.add_job", TokenScope.OPERATE),
    "workflow.cancel": Rule("queues.change_job", TokenScope.OPERATE),
    # admin: change what exists, destroy, plan
    "job.delete": Rule("queues.delete_job", TokenScope.ADMIN),
    "queue.add": Rule("queues.add_queue", TokenScope.ADMIN),
    "queue.change": Rule("queues.change_queue", TokenScope.ADMIN),
    "queue.purge": Rule("queues.delete_job", TokenScope.ADMIN),
    "queue.delete": Rule("queues.delete_queue", TokenScope.ADMIN),
    "schedule.add": Rule("queues.add_schedule", TokenScope.ADMIN),
    "schedule.change": Rule("queues.change_schedule", TokenScope.ADMIN),
    "schedule.delete": Rule("queues.delete_schedule", TokenScope.ADMIN),
}
"""Every action and what it needs."""

VIEW = RULES[READ].permission


def is_operator(user: Any) -> bool:
    """An active staff user who may read: the precondition of every action."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perm(VIEW)
    )


def refusal(user: Any, action: str) -> str | None:
    """Why ``user`` may not do ``action``, or None when they may."""
    rule = RULES[action]
    name = user.get_username() if user is not None and user.is_authenticated else "An anonymous user"
    if not (user is not None and user.is_authenticated and user.is_active and user.is_staff):
        return f"{name} is not an active staff user; only active staff may use Taskweb."
    if not user.has_perm(VIEW):
        return f"{name} lacks the {VIEW} permission, which every action needs."
    if not user.has_perm(rule.permission):
        return f"{action} needs the {rule.permission} permission, which {name} does not have."
    return None


def can(user: Any, action: str) -> bool:
    return refusal(user, action) is None


def allowed_actions(user: Any) -> frozenset[str]:
    """The changes this user may make (reading aside); pages show only these buttons."""
    if not is_operator(user):
        return frozenset()
    return frozenset(
        action for action, rule in RULES.items() if action != READ and user.has_perm(rule.permission)
    )


def sees_payloads(actor: Any) -> bool:
    """Whether ``actor`` (a user, or a token acting for one) may read encrypted payloads in the
    clear; everyone else is shown "encrypted" in their place."""
    if isinstance(actor, ApiToken):
        return token_refusal(actor, "payload.view") is None
    return can(actor, "payload.view")


def token_refusal(token: ApiToken, action: str) -> str | None:
    """Why ``token`` may not do ``action`` (its scope, or its owner's rights), or None."""
    return scoped_refusal(f"The token {token.name!r}", TokenScope(token.scope), token.user, action)


def scoped_refusal(credential: str, scope: TokenScope, owner: Any, action: str) -> str | None:
    """Why a credential acting for ``owner`` within ``scope`` may not do ``action``, or None.

    Tokens and identity-provider JWTs (``queues.oidc``) both answer here, so a scope never
    lets anyone do more than their own permissions allow."""
    needed = RULES[action].scope
    if scope.rank < needed.rank:
        return f"{credential} has the {scope} scope; {action} needs the {needed} scope."
    owner_refused = refusal(owner, action)
    if owner_refused:
        return f"{credential} can do no more than its owner: {owner_refused}"
    return None
