"""Child processes that never outlive the benchmark.

Every worker and driver starts in its own session, so one signal reaches the whole
tree it forks (Celery's pool, RQ's pool), and a registry lets ``stop_all`` end them on
any exit path, Ctrl-C included.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

_live: set[subprocess.Popen] = set()


def spawn(argv: Sequence[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    """Start ``argv`` in a new session with its output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=out,
            start_new_session=True,
        )
    _live.add(proc)
    return proc


def stop(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is still there after ``grace``."""
    _signal_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    # Kill the group even when the leader has exited: pool children may linger.
    _signal_group(proc, signal.SIGKILL)
    proc.wait()
    if proc.stdout:
        proc.stdout.close()
    _live.discard(proc)


def stop_all() -> None:
    for proc in list(_live):
        stop(proc, grace=3.0)


def _signal_group(proc: subprocess.Popen, sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def install_signal_handlers() -> None:
    """Turn SIGTERM into KeyboardInterrupt so the same cleanup runs for both."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
