"""``GET /api/stats``: job counts by status and queue, workers, recent throughput."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router

from ..serializers import stats
from .schemas import StatsOut
from .security import requires

router = Router(tags=["stats"])


@router.get("/stats", response=StatsOut, summary="Counts and throughput at a glance", auth=requires("view"))
def get_stats(request: HttpRequest) -> dict[str, Any]:
    return stats()
