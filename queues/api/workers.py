"""Workers: every runworker process, alive, stopped or lost."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from ..models import WorkerStatus
from ..serializers import workers_with_running
from .routes import Routes
from .schemas import WorkerOut

router = Routes("/workers", tags=["workers"])


@router.read("", list[WorkerOut], "Workers, newest first")
def list_workers(request: HttpRequest, status: WorkerStatus | None = None) -> list[dict[str, Any]]:
    return workers_with_running(status)
