"""Every error the API answers with, as JSON: ``{"detail": ..., "errors": [...]}``.

400 carries ``errors``: one ``{"field", "message"}`` per bad field, so a client
can show each message beside its input.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError

from ..exceptions import InvalidJob, InvalidQueue, JobNotFound, JobStateError, QueueConflict


class NotFound(Exception):
    """An id or name in the URL that names nothing."""


M = TypeVar("M", bound=Model)


def get_or_404(rows: QuerySet[M], description: str, **lookup: Any) -> M:
    """The one row matching ``lookup``, or NotFound saying "<description> does not exist"."""
    found = rows.filter(**lookup).first()
    if found is None:
        raise NotFound(f"{description} does not exist.")
    return found


def _field(loc: list[Any]) -> str:
    # ninja prefixes the location with where it came from ("body", "query", "path")
    # and the parameter name; keep what the client wrote.
    parts = [str(part) for part in loc]
    if parts and parts[0] in {"body", "query", "path"}:
        parts = parts[1:]
    if len(parts) > 1 and parts[0] in {"payload", "filters", "data"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def bad_request(
    api: NinjaAPI, request: HttpRequest, detail: str, errors: list[dict[str, str]]
) -> HttpResponse:
    return api.create_response(request, {"detail": detail, "errors": errors}, status=400)


def install(api: NinjaAPI) -> None:
    @api.exception_handler(ValidationError)
    def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        errors = [
            {"field": _field(list(e.get("loc", []))), "message": e.get("msg", "invalid")} for e in exc.errors
        ]
        return bad_request(
            api,
            request,
            "The request is not valid: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors),
            errors,
        )

    @api.exception_handler(InvalidJob)
    @api.exception_handler(InvalidQueue)
    def invalid(request: HttpRequest, exc: InvalidJob | InvalidQueue) -> HttpResponse:
        return bad_request(api, request, str(exc), [{"field": exc.field or "body", "message": str(exc)}])

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if exc.status_code == 400:  # ninja raises 400 itself only for a body it cannot parse
            message = "The request body is not valid JSON."
            return bad_request(api, request, message, [{"field": "body", "message": message}])
        return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)

    @api.exception_handler(JobNotFound)
    @api.exception_handler(NotFound)
    def not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
        return api.create_response(request, {"detail": str(exc)}, status=404)

    @api.exception_handler(JobStateError)
    @api.exception_handler(QueueConflict)
    def conflict(request: HttpRequest, exc: Exception) -> HttpResponse:
        return api.create_response(request, {"detail": str(exc)}, status=409)
