"""Request ids: one per HTTP request, in every log line it causes and in the jobs it enqueues.

An incoming ``X-Request-ID`` (from a proxy or a calling service) is kept when it is
a plausible id, so one id follows a request across systems; otherwise a new one is
made. It goes back in the response's ``X-Request-ID`` header.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from . import logs

logger = logging.getLogger("taskweb.request")
ACCEPTED_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        sent = request.headers.get("X-Request-ID", "")
        request_id = sent if ACCEPTED_ID.match(sent) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        started = time.monotonic()
        with logs.bind(request_id=request_id):
            response = self.get_response(request)
            logger.info(
                "%s %s %s %.1fms",
                request.method,
                request.path,
                response.status_code,
                (time.monotonic() - started) * 1000,
            )
        response["X-Request-ID"] = request_id
        return response
