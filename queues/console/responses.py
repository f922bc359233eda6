"""Small HTMX responses shared by the console's actions."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string


def flash(
    request: HttpRequest, message: str, level: str = "ok", status: int = 200, extra: str = ""
) -> HttpResponse:
    """A message swapped out-of-band into the page's flash area, plus any other fragments."""
    html = render_to_string("queues/partials/flash.html", {"message": message, "level": level}, request)
    return HttpResponse(html + extra, status=status)


def redirect(url: str) -> HttpResponse:
    """Tell htmx to load another page (e.g. after deleting the one shown)."""
    response = HttpResponse(status=204)
    response["HX-Redirect"] = url
    return response
