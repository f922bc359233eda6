"""Workers: every runworker process, alive, stopped or lost."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from ..models import WorkerStatus
from ..serializers import workers_with_running
from .schemas import WorkerOut
from .security import requires

router = Router(tags=["workers"])


@router.get("/workers", response=list[WorkerOut], summary="Workers, newest first", auth=requires("view"))
def list_workers(request: HttpRequest, status: WorkerStatus | None = None) -> list[dict[str, Any]]:
    return workers_with_running(status)
