"""Every error the API answers with, as JSON: ``{"detail": ..., "errors": [...]}``.

400 carries ``errors``: one ``{"field", "message"}`` per bad field, so a client
can show each message beside its input. Nothing under ``/api/`` answers HTML: a URL
no route knows is a JSON 404, a method a route does not take a JSON 405, and an
unexpected exception a JSON 500 (logged with its traceback, as Django logs one).
The OpenAPI document lists every error each operation may answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import URLPattern, re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError

from ..exceptions import InvalidJob, InvalidQueue, JobNotFound, JobStateError, QueueConflict, WorkflowNotFound
from .schemas import ErrorOut

logger = logging.getLogger("django.request")

ERROR_DESCRIPTIONS = {
    400: "Bad input: errors lists each bad field.",
    401: "No token, or an unknown or revoked one, or an identity provider's JWT that is not accepted.",
    403: "Not allowed: the user or token may not do this, or a session call lacks the CSRF header.",
    404: "Nothing has the id or name in the URL.",
    409: "The action does not fit the current state.",
    413: "The request body is larger than QUEUES_API_MAX_BODY.",
    500: "An unexpected error; it is logged with its traceback.",
    503: "The identity provider's signing keys could not be fetched (JWT sign-in only).",
}
CONFLICT = {409: ErrorOut}
"""Add to an operation's ``response`` when its action may not fit the current state."""


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


class JsonAPI(NinjaAPI):
    """A NinjaAPI that answers JSON for everything, and documents every error it answers."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        install(self)

    @property
    def urls(self) -> tuple[list[Any], str, str]:
        patterns, app_name, namespace = super().urls
        for pattern in patterns:
            if isinstance(pattern, URLPattern):
                pattern.callback = _json_not_allowed(pattern.callback)
        # Last, so that it only takes what no route matched.
        patterns.append(re_path(r"", csrf_exempt(_no_route), name="no-route"))
        return patterns, app_name, namespace

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        schema.setdefault("components", {}).setdefault("schemas", {}).update(_error_components())
        for operations in schema["paths"].values():
            for operation in operations.values():
                _document_errors(operation)
        return schema


def _json_not_allowed(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if response.status_code != 405:
            return response
        allowed = response["Allow"]
        answer = JsonResponse({"detail": f"{request.method} is not allowed here; use {allowed}."}, status=405)
        answer["Allow"] = allowed
        return answer

    wrapper.csrf_exempt = True  # type: ignore[attr-defined]  (as ninja's own views)
    return wrapper


def _no_route(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {"detail": f"No API endpoint is at {request.path}; the API's docs list every endpoint."},
        status=404,
    )


def _error_components() -> dict[str, Any]:
    schema = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    return {**schema.pop("$defs", {}), "ErrorOut": schema}


def _document_errors(operation: dict[str, Any]) -> None:
    """Add the errors every operation may answer; 404 only where the URL names something."""
    codes = {400, 401, 403, 413, 500, 503}
    if any(parameter["in"] == "path" for parameter in operation.get("parameters", [])):
        codes.add(404)
    # ninja keys its own responses by number: one key per status, as text, as JSON has them.
    responses = {str(code): answer for code, answer in operation.get("responses", {}).items()}
    operation["responses"] = responses
    for code in sorted(codes | {int(code) for code in responses if int(code) >= 400}):
        responses[str(code)] = {
            "description": ERROR_DESCRIPTIONS[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
        }


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
    @api.exception_handler(WorkflowNotFound)
    @api.exception_handler(NotFound)
    def not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
        return api.create_response(request, {"detail": str(exc)}, status=404)

    @api.exception_handler(JobStateError)
    @api.exception_handler(QueueConflict)
    def conflict(request: HttpRequest, exc: Exception) -> HttpResponse:
        return api.create_response(request, {"detail": str(exc)}, status=409)

    @api.exception_handler(Exception)
    def unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.error("Internal Server Error: %s", request.path, exc_info=exc, extra={"status_code": 500})
        message = "An unexpected error occurred; it has been logged."
        return api.create_response(request, {"detail": message}, status=500)
