"""Who may see the console and who may act in it.

Staff with a model's view permission see its pages; every action names the
permission it needs here, and each view checks it again on the server, whatever
the page showed (a read-only operator never gets a button, and a forged request
still gets a 403).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse_lazy

from .responses import flash

ACTIONS: dict[str, str] = {
    "job.retry": "queues.change_job",
    "job.cancel": "queues.change_job",
    "job.delete": "queues.delete_job",
    "dead.replay": "queues.change_job",
    "queue.add": "queues.add_queue",
    "queue.change": "queues.change_queue",
    "queue.purge": "queues.delete_job",
    "queue.delete": "queues.delete_queue",
}
"""Every console action and the Django permission it needs."""

VIEW = "queues.view_job"
"""Seeing any console page (or opening its live socket) needs staff status and this."""


def is_operator(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff and user.has_perm(VIEW))


def can(user: AbstractBaseUser | AnonymousUser, action: str) -> bool:
    return is_operator(user) and user.has_perm(ACTIONS[action])


def allowed_actions(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    """The actions this user may take; templates show only these buttons."""
    return frozenset(action for action in ACTIONS if can(user, action))


View = Callable[..., HttpResponse]


def operator_required(view: View) -> View:
    """Log in first (on the console's own login page, wherever it is mounted); then staff
    with view permission, or 403."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not is_operator(request.user):
            raise PermissionDenied("The console is for staff with permission to view jobs.")
        return view(request, *args, **kwargs)

    return login_required(wrapper, login_url=reverse_lazy("console:login"))


def action_required(action: str) -> Callable[[View], View]:
    """Checked on every request: the button being hidden is not the guard."""

    def decorator(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not can(request.user, action):
                return refuse(request, action)
            return view(request, *args, **kwargs)

        return operator_required(wrapper)

    return decorator


def refuse(request: HttpRequest, action: str) -> HttpResponse:
    return flash(
        request, f"You may look but not act: {action} needs the {ACTIONS[action]} permission.", "error", 403
    )
