"""Servers that tests start, on ports nobody else can hand them.

A fixed port (or one probed free and handed over later) may be taken by another
process in the meantime: another test run, a developer's ``runbroker``. A readiness
check that only connects would then talk to that stranger. So every server a test
starts either binds port 0 and names the port it got in its own log (``runbroker``,
daphne), or is given a port reserved a moment before (nginx, PgBouncer, PostgreSQL,
which cannot report one). Either way the port is used only once it is proven to be
the server's own: the listening socket on it is an open file of the process the test
started, or of one of its children (Linux ``/proc``).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

LISTEN_STATE = "0A"  # TCP_LISTEN in /proc/net/tcp
T = TypeVar("T")
DAPHNE_LISTENING = re.compile(r"Listening on TCP address 127\.0\.0\.1:(?P<port>\d+)")


class ServerExited(RuntimeError):
    """The server process ended before it was ready; the message carries its log."""


def reserve_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago, for servers that cannot bind port 0 and report it.

    Whoever starts a server on it must then prove it is the server's with ``wait_for_own_port``.
    """
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def listening_sockets(port: int) -> set[str]:
    """Inodes of the sockets listening on ``port`` (any address, IPv4 or IPv6)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == LISTEN_STATE:
                inodes.add(fields[9])
    return inodes


def process_tree(pid: int) -> set[int]:
    """``pid`` and every process descended from it (nginx's workers, runuser's child)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # the process ended while we looked
            # The command name (field 2) may hold spaces and parentheses: split after it.
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, added = {pid}, True
    while added:
        children = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= children
        added = bool(children)
    return tree


def owns_port(pid: int, port: int) -> bool:
    """True when a process of ``pid``'s tree holds a socket listening on ``port``."""
    wanted = {f"socket:[{inode}]" for inode in listening_sockets(port)}
    if not wanted:
        return False
    for member in process_tree(pid):
        try:
            fds = list(Path(f"/proc/{member}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in wanted:
                    return True
            except OSError:
                continue
    return False


def wait_for_own_port(proc: subprocess.Popen, port: int, what: str, log: Path, timeout: float = 60) -> None:
    """Wait until ``proc`` (or a child of it) listens on ``port``; fail if it exits first,
    or if the port stays held by someone else."""
    _poll(lambda: owns_port(proc.pid, port), proc, what, log, timeout)


def logged_port(
    proc: subprocess.Popen, log: Path, pattern: re.Pattern[str], what: str, timeout: float = 60
) -> int:
    """The port a server bound to port 0 reports in its own log, once proven to be its own.

    ``pattern`` has a ``port`` group and may have a ``pid`` group, which must then be ``proc``'s.
    """

    def reported() -> int | None:
        for match in pattern.finditer(log.read_text(errors="replace")):
            pid = match.groupdict().get("pid")
            port = int(match.group("port"))
            if (pid is None or int(pid) == proc.pid) and owns_port(proc.pid, port):
                return port
        return None

    return _poll(reported, proc, what, log, timeout)


def _poll(
    condition: Callable[[], T | None], proc: subprocess.Popen, what: str, log: Path, timeout: float
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        if value := condition():
            return value
        if proc.poll() is not None:
            raise ServerExited(f"{what} exited with {proc.returncode}:\n{_read(log)}")
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} was not listening within {timeout:.0f}s:\n{_read(log)}")
        time.sleep(0.05)


def _read(log: Path) -> str:
    return log.read_text(errors="replace") if log.exists() else f"({log} is missing)"
