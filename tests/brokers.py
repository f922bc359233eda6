"""A real ``manage.py runbroker`` on a port nobody else holds, and clients that speak to it."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from pathlib import Path

from .processes import ROOT, child_env, wait_until


def reserve_port() -> int:
    """A port the OS just handed out; free again once this returns (another process could take it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class BrokerProcess:
    """``runbroker`` with ``args``; started again on another port if the reserved one was taken.

    It is ours once its own log says it listens on our port: something else answering
    on that port would never write to this process's log."""

    def __init__(self, *args: str, log_dir: Path, attempts: int = 3) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(attempts):
            self.port = reserve_port()
            self.log_path = log_dir / f"runbroker-{self.port}-{time.monotonic_ns()}.log"
            self._log = self.log_path.open("w")
            self.proc = subprocess.Popen(
                [sys.executable, "manage.py", "runbroker", "--port", str(self.port), *args],
                cwd=ROOT,
                env=child_env(),
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            wait_until(lambda: self.proc.poll() is not None or self._says_listening(), timeout=60)
            if self.proc.poll() is None:
                return
            self._log.close()
        raise AssertionError(f"runbroker did not start:\n{self.output()}")

    def _says_listening(self) -> bool:
        return f"runbroker listening on 127.0.0.1:{self.port} " in self.output()

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def client(self) -> LineClient:
        return LineClient(self.port)

    def stop(self) -> None:
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
        self.file.write(line.encode() + b"\n")
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
