"""GET /health: database and worker checks; 503 when the database is unreachable."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from django.db import connection

from queues import broker
from queues.models import Worker

from .processes import ROOT, child_env, wait_until

DOWN_PORT = 8201  # nothing listens here: the "database" of the server under test
SERVER_PORT = 8202


@pytest.mark.django_db
def test_health_is_ok_with_the_database_and_a_live_worker(client):
    broker.register_worker(Worker(id="w1", hostname="h", pid=1, concurrency=2))
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


def _unreachable_database_url(tmp_path) -> str:
    if connection.vendor == "sqlite":
        return f"sqlite:///{tmp_path}/missing-directory/taskweb.sqlite3"
    return f"postgres://postgres@127.0.0.1:{DOWN_PORT}/taskweb"


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.process
@pytest.mark.django_db
def test_health_is_503_when_the_database_is_unreachable(tmp_path):
    env = child_env(DATABASE_URL=_unreachable_database_url(tmp_path), ALLOWED_HOSTS="127.0.0.1")
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(SERVER_PORT),
            "taskweb.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: _listening(SERVER_PORT) or server.poll() is not None)
        status, body = _get(f"http://127.0.0.1:{SERVER_PORT}/health")
    finally:
        server.terminate()
        server.wait(10)
        log.close()
    assert status == 503, (tmp_path / "server.log").read_text()
    answer = json.loads(body)
    assert answer["status"] == "unavailable"
    assert answer["checks"]["database"]["ok"] is False
