"""How every resource router declares its operations, so that each follows the same rules.

A router is mounted at its resource's prefix (``/jobs``); its paths follow it. An
operation names the permission it needs and nothing else about authentication
(``security.requires`` turns it into the credentials accepted); reading needs ``view``.
An action that may not fit the current state says ``conflict=True``, which documents
its 409. Ids in URLs are 64-bit row ids, bounded by ``RowId`` before they reach SQL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from ninja import Path as PathParam
from ninja import Router

from ..serializers import job_detail
from . import security
from .errors import CONFLICT
from .schemas import MAX_ID
from .security import requires

View = Callable[..., Any]

RowId: Any = PathParam(..., ge=1, le=MAX_ID)
"""The default of a view's id parameter: larger ids cannot exist and must not reach SQL."""


class Routes(Router):
    """A ninja Router for one resource: mounted at ``prefix`` (operation paths follow it),
    its operations declared by the permission they need."""

    def __init__(self, prefix: str, **options: Any) -> None:
        super().__init__(**options)
        self.prefix = prefix

    def read(self, path: str, response: Any, summary: str) -> Callable[[View], View]:
        """A GET for anyone who may view the queues."""
        return self.get(path, response=response, summary=summary, auth=requires("view"))

    def action(
        self,
        path: str,
        response: Any,
        summary: str,
        needs: str,
        *,
        method: str = "POST",
        conflict: bool = False,
    ) -> Callable[[View], View]:
        """A change (a POST unless ``method`` says otherwise) for those allowed ``needs``,
        a key of ``queues.rules.RULES``.

        ``response`` is what a 200 answers, or the answers by status when it is another.
        """
        if conflict:
            response = {**(response if isinstance(response, dict) else {200: response}), **CONFLICT}
        return self.api_operation([method], path, response=response, summary=summary, auth=requires(needs))


def job_answer(request: HttpRequest, job_id: int) -> dict[str, Any]:
    """A job with its attempts, as every operation on one answers it: its payloads shown
    only to a caller allowed to see them."""
    return job_detail(job_id, security.reveals(request))
