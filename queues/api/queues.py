"""Queues: list with counts, create, change limits, pause, resume, purge, delete."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Status as Reply  # the HTTP status; Status means a job's

from .. import lifecycle
from ..models import Queue
from ..serializers import queue_out, queues_with_counts
from .errors import get_or_404
from .routes import Routes
from .schemas import Count, QueueIn, QueueOut, QueueSettings

router = Routes("/queues", tags=["queues"])


def existing(name: str) -> Queue:
    """The queue named in the URL; 404 when there is none (even with QUEUES_AUTO_CREATE)."""
    return get_or_404(Queue.objects.all(), f"Queue {name!r}", name=name)


def _settings(payload: QueueSettings) -> dict[str, Any]:
    return payload.model_dump(exclude_unset=True, exclude={"name"})


@router.read("", list[QueueOut], "Every queue with its job counts")
def list_queues(request: HttpRequest) -> list[dict[str, Any]]:
    return queues_with_counts()


@router.action("", {201: QueueOut}, "Create a queue", "queue.add", conflict=True)
def create_queue(request: HttpRequest, payload: QueueIn) -> Reply:
    return Reply(201, queue_out(lifecycle.create_queue(payload.name, **_settings(payload))))


@router.read("/{name}", QueueOut, "One queue with its job counts")
def get_queue(request: HttpRequest, name: str) -> dict[str, Any]:
    return queue_out(existing(name))


@router.action("/{name}", QueueOut, "Change a queue's limits and defaults", "queue.change", method="PATCH")
def update_queue(request: HttpRequest, name: str, payload: QueueSettings) -> dict[str, Any]:
    """Fields left out stay as they are; null clears concurrency or rate_limit and puts
    max_attempts, timeout or retention back to its default."""
    return queue_out(lifecycle.update_queue(existing(name).name, **_settings(payload)))


@router.action("/{name}/pause", QueueOut, "Stop workers claiming from a queue", "queue.pause")
def pause(request: HttpRequest, name: str) -> dict[str, Any]:
    return queue_out(lifecycle.set_paused(existing(name).name, True))


@router.action("/{name}/resume", QueueOut, "Let workers claim from a queue again", "queue.pause")
def resume(request: HttpRequest, name: str) -> dict[str, Any]:
    return queue_out(lifecycle.set_paused(existing(name).name, False))


@router.action("/{name}/purge", Count, "Delete every waiting job of a queue", "queue.purge")
def purge(request: HttpRequest, name: str) -> dict[str, int]:
    return {"count": lifecycle.purge_queue(existing(name).name)}


@router.action(
    "/{name}", Count, "Delete a queue and its jobs", "queue.delete", conflict=True, method="DELETE"
)
def delete_queue(request: HttpRequest, name: str) -> dict[str, int]:
    """Refused with 409 while one of its jobs runs, and for the default queue."""
    return {"count": lifecycle.delete_queue(existing(name).name)}
