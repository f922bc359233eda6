"""One virtualenv per peer under ``var/bench/venvs``, never the project's requirements.

A venv is rebuilt only when its pinned requirement list changes, so repeated runs
start at once.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench.peers.base import Peer

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / "var" / "bench" / "venvs"
INSTALL_TIMEOUT = 900


def project_python() -> Path:
    venv = ROOT / ".venv" / "bin" / "python"
    return venv if venv.exists() else Path(sys.executable)


def ensure(peer: Peer) -> Path:
    """The Python that runs ``peer``, installing its pinned requirements if needed."""
    if not peer.requirements:
        return project_python()
    venv = VENVS / peer.name
    python = venv / "bin" / "python"
    marker = venv / "bench-requirements.txt"
    wanted = "\n".join(peer.requirements) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    print(f"installing {peer.name} into {venv.relative_to(ROOT)}: {' '.join(peer.requirements)}", flush=True)
    log = ROOT / "var" / "bench" / "logs" / f"install-{peer.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        for argv, timeout in (
            ([sys.executable, "-m", "venv", "--clear", str(venv)], 120),
            ([str(python), "-m", "pip", "install", "--quiet", *peer.requirements], INSTALL_TIMEOUT),
        ):
            subprocess.run(argv, check=True, timeout=timeout, stdout=out, stderr=out)
    marker.write_text(wanted)
    return python
