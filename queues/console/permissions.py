"""Who may see the console and who may act in it.

Staff with the view permission see every page; every action needs the permission
``queues.rules`` names for it (the same table the API, tokens, the TCP protocol and
the live sockets use), and each view checks it again on the server, whatever the
page showed (a read-only operator never gets a button, and a forged request
still gets a 403).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse_lazy

from ..rules import allowed_actions, can, is_operator, refusal
from .responses import flash

__all__ = ["action_required", "allowed_actions", "can", "is_operator", "operator_required", "refuse"]

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
    return flash(request, f"You may look but not act: {refusal(request.user, action)}", "error", 403)
