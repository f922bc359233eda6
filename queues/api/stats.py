"""``GET /api/stats``: job counts by status and queue, workers, recent throughput."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from ..serializers import stats
from .routes import Routes
from .schemas import StatsOut

router = Routes("/stats", tags=["stats"])


@router.read("", StatsOut, "Counts and throughput at a glance")
def get_stats(request: HttpRequest) -> dict[str, Any]:
    return stats()
