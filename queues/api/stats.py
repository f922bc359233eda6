"""``GET /api/stats``: job counts by status and queue, workers, recent throughput."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count, Sum
from django.http import HttpRequest
from django.utils import timezone
from ninja import Router

from .. import queue_ops
from ..models import DeadLetter, MinuteStat, Queue, Worker, WorkerStatus
from .schemas import StatsOut

router = Router(tags=["stats"])
RATES = ("enqueued", "succeeded", "failed", "retried", "dead")


def _since(minutes: int) -> dict[str, int]:
    # The current minute's row is still filling up: count it, so "last minute" is never zero
    # right after a burst (it covers between 1 and 2 minutes).
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=minutes)
    totals = MinuteStat.objects.filter(minute__gte=start).aggregate(**{name: Sum(name) for name in RATES})
    return {name: int(totals[name] or 0) for name in RATES}


def stats() -> dict[str, Any]:
    per_queue = queue_ops.status_counts()
    totals = queue_ops.empty_counts()
    for counts in per_queue.values():
        for status, n in counts.items():
            totals[status] += n
    workers = dict.fromkeys(WorkerStatus.values, 0)
    workers.update(dict(Worker.objects.values_list("status").annotate(n=Count("id")).order_by()))
    return {
        "counts": totals,
        "queues": [
            {"name": q.name, "paused": q.paused, "counts": per_queue.get(q.pk, queue_ops.empty_counts())}
            for q in Queue.objects.all()
        ],
        "dead_letters": DeadLetter.objects.filter(replayed_at=None).count(),
        "workers": workers,
        "last_minute": _since(1),
        "last_hour": _since(60),
    }


@router.get("/stats", response=StatsOut, summary="Counts and throughput at a glance")
def get_stats(request: HttpRequest) -> dict[str, Any]:
    return stats()
