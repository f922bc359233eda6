"""Workers: every runworker process, alive, stopped or lost."""

from __future__ import annotations

from typing import Any

from django.db.models import Count
from django.http import HttpRequest
from ninja import Router

from ..models import Job, Worker, WorkerStatus
from ..states import Status
from .schemas import WorkerOut

router = Router(tags=["workers"])


def workers_with_running(status: str | None = None) -> list[dict[str, Any]]:
    workers = Worker.objects.all() if status is None else Worker.objects.filter(status=status)
    running = dict(
        Job.objects.filter(status=Status.RUNNING).values_list("worker_id").annotate(n=Count("id")).order_by()
    )
    return [
        {
            "id": w.id,
            "hostname": w.hostname,
            "pid": w.pid,
            "queues": w.queues,
            "concurrency": w.concurrency,
            "status": w.status,
            "started_at": w.started_at,
            "last_heartbeat": w.last_heartbeat,
            "stopped_at": w.stopped_at,
            "jobs_done": w.jobs_done,
            "jobs_failed": w.jobs_failed,
            "running": running.get(w.id, 0),
        }
        for w in workers
    ]


@router.get("/workers", response=list[WorkerOut], summary="Workers, newest first")
def list_workers(request: HttpRequest, status: WorkerStatus | None = None) -> list[dict[str, Any]]:
    return workers_with_running(status)
