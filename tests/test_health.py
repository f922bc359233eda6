"""GET /health: database and worker checks; 503 when the database is unreachable."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from django.db import connection

from queues import lifecycle
from queues.models import Worker

from .browser import DaphneProcess


@pytest.mark.django_db
def test_health_is_ok_with_the_database_and_a_live_worker(client):
    lifecycle.register_worker(Worker(id="w1", hostname="h", pid=1, concurrency=2))
    response = client.get("/health")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert (body["checks"]["workers"]["ok"], body["checks"]["workers"]["alive"]) == (True, 1)


@pytest.mark.django_db
def test_health_without_live_workers_is_degraded_but_still_200(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["workers"] == {"ok": False, "alive": 0, "last_heartbeat": None}


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound but never listened on while the test runs: connections to it are refused,
    and no other process can start listening there meanwhile."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield held.getsockname()[1]


def _unreachable_database_url(tmp_path, port: int) -> str:
    if connection.vendor == "sqlite":
        return f"sqlite:///{tmp_path}/missing-directory/taskweb.sqlite3"
    return f"postgres://postgres@127.0.0.1:{port}/taskweb"


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.process
@pytest.mark.django_db
def test_health_is_503_when_the_database_is_unreachable(tmp_path, closed_port):
    server = DaphneProcess(
        tmp_path, DATABASE_URL=_unreachable_database_url(tmp_path, closed_port), ALLOWED_HOSTS="127.0.0.1"
    )
    try:
        status, body = _get(f"{server.url}/health")
    finally:
        server.stop()
    assert status == 503, server.output()
    answer = json.loads(body)
    assert answer["status"] == "unavailable"
    assert answer["checks"]["database"]["ok"] is False
