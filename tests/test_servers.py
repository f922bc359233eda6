"""tests/servers.py: a port counts as a server's own only if its process tree listens on it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from . import servers

LISTENER = """
import socket, sys, time
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen()
print(sock.getsockname()[1], flush=True)
time.sleep(60)
"""


@pytest.fixture
def child() -> Iterator[subprocess.Popen]:
    """A process that listens on a port of its own and prints it."""
    proc = subprocess.Popen([sys.executable, "-c", LISTENER], stdout=subprocess.PIPE, text=True)
    yield proc
    proc.kill()
    proc.wait()


def test_a_port_a_process_listens_on_is_its_own(child):
    port = int(child.stdout.readline())
    assert servers.owns_port(child.pid, port)


def test_a_port_someone_else_listens_on_is_not_ours(child):
    child.stdout.readline()
    with socket.socket() as foreign:
        foreign.bind(("127.0.0.1", 0))
        foreign.listen()
        assert not servers.owns_port(child.pid, foreign.getsockname()[1])


def test_a_port_nobody_listens_on_is_nobodys(child):
    assert not servers.owns_port(child.pid, servers.reserve_port())


def test_a_listener_of_a_grandchild_counts_for_the_process_that_started_it():
    wrapper = subprocess.Popen(
        ["sh", "-c", f"{sys.executable} -c '{LISTENER}'; exit 0"], stdout=subprocess.PIPE, text=True
    )
    try:
        port = int(wrapper.stdout.readline())
        assert servers.owns_port(wrapper.pid, port)
    finally:
        for pid in servers.process_tree(wrapper.pid) - {wrapper.pid}:
            os.kill(pid, signal.SIGTERM)
        wrapper.wait()
