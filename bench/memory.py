"""Peak memory of a worker command and everything it forks, sampled from /proc.

Every worker command starts in its own session (``procs.spawn``), so its process tree
is exactly the processes whose session id is the command's pid: children forked late
(a replaced pool child) are counted too. Two sums are kept, each at its peak: RSS,
which counts a page shared by forks once per process (the figure a container limit
or the OOM killer sees per process, summed: an upper bound), and PSS, which splits each
shared page among the processes sharing it (what the tree really costs the machine).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024


def session_of(stat: str) -> int:
    """The session id in a /proc/PID/stat line (fields after the parenthesised name)."""
    return int(stat.rsplit(")", 1)[1].split()[3])


def pss_bytes(pid: str) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def sample(sessions: set[int]) -> tuple[int, int]:
    """(RSS, PSS) in bytes summed over the live processes of ``sessions``."""
    rss = pss = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if session_of(Path(f"/proc/{entry.name}/stat").read_text()) not in sessions:
                continue
            rss += int(Path(f"/proc/{entry.name}/statm").read_text().split()[1]) * PAGE
            pss += pss_bytes(entry.name)
        except (OSError, ValueError, IndexError):  # the process ended between two reads
            continue
    return rss, pss


class PeakMemory:
    """Samples the trees of ``leaders`` every ``interval`` seconds on a thread until ``stop``."""

    def __init__(self, leaders: list[int], interval: float = 0.25) -> None:
        self.sessions = set(leaders)
        self.interval = interval
        self.rss = self.pss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, pss = sample(self.sessions)
            self.rss, self.pss = max(self.rss, rss), max(self.pss, pss)
            self._stop.wait(self.interval)

    def stop(self) -> dict[str, float]:
        """The peaks in MB."""
        self._stop.set()
        self._thread.join()
        return {"RSS": self.rss / MB, "PSS": self.pss / MB}
