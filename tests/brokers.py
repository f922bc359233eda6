"""A real ``manage.py runbroker`` on a port nobody else holds, and clients that speak to it."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import servers
from .processes import ROOT, child_env

# The line runbroker logs once it listens: the address it really bound, and its pid.
LISTENING = re.compile(r"runbroker listening on 127\.0\.0\.1:(?P<port>\d+) \(pid (?P<pid>\d+),")


class BrokerProcess:
    """``runbroker`` with ``args`` on the port the kernel gave it (``--port 0``).

    The port comes from the server's own log line, which names its pid, and the socket on
    it is proven to be that process's (tests/servers.py): a server of someone else's, on
    any port, can never be taken for it. Clients it hands out are closed with it."""

    def __init__(self, *args: str, log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"runbroker-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "runbroker", "--port", "0", *args],
            cwd=ROOT,
            env=child_env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.clients: list[LineClient] = []
        try:
            self.port = servers.logged_port(self.proc, self.log_path, LISTENING, "runbroker")
        except BaseException:
            self.stop()
            raise

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def client(self) -> LineClient:
        self.clients.append(LineClient(self.port))
        return self.clients[-1]

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(30)
        self._log.close()


class LineClient:
    """One connection: send a line, read the reply line (``""`` once the server hung up)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.file = self.sock.makefile("rwb")

    def __call__(self, line: str) -> str:
        return self.send_raw(line.encode() + b"\n")

    def send_raw(self, data: bytes) -> str:
        self.file.write(data)
        self.file.flush()
        return self.read()

    def read(self) -> str:
        return self.file.readline().decode().rstrip("\n")

    def closed_by_server(self) -> bool:
        """True when the server has hung up (nothing more to read)."""
        return self.file.readline() == b""

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a line still buffered for a server that hung up
            self.file.close()
        self.sock.close()
