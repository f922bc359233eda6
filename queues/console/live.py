"""One poller per web process feeds every open console socket.

daphne has no lifespan hook, so the poller starts with the first socket of the
process and stops with the last. Each tick it reads what changed once (jobs by
``updated_at``, queues, workers, dead letters), renders each subscribed topic's
fragments once, and sends them to process-local channel-layer groups: database
cost grows with the number of distinct topics watched, never with open tabs.

Every ``ACCESS_SECONDS`` the same tick also re-checks, for all sockets at once, that
their users may still watch (``access.refused``); a socket whose user lost the right
or whose session ended is told to close.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from uuid import uuid4

from django.db import close_old_connections, connections

from . import access, layer
from .ticks import Tick

logger = logging.getLogger("queues.console")

TICK_SECONDS = 0.5
ACCESS_SECONDS = 1.0
PROCESS = uuid4().hex[:12]
"""Groups are named per process: with channels-redis every web process runs its own
poller, and a shared group name would deliver each fragment once per process."""


def group(topic: str) -> str:
    return f"console.{PROCESS}.{topic}"


@dataclass
class Demand:
    """What the sockets of this process want from the next tick."""

    topics: set[str]
    refresh: set[str] = field(default_factory=set)
    rows: set[int] = field(default_factory=set)


class Poller:
    def __init__(self) -> None:
        self.topics: Counter[str] = Counter()
        self._refresh: set[str] = set()
        self._rows: set[int] = set()
        self.viewers: dict[str, access.Viewer] = {}
        self._task: asyncio.Task | None = None
        self._last: asyncio.Task | None = None
        # One thread keeps one database connection for every tick of this process.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="console-poller")

    def subscribe(self, topics: list[str], rows: set[int]) -> None:
        """Add a socket's topics; its page gets fresh fragments on the next tick
        (whatever changed between the page render and the socket opening)."""
        self.topics.update(topics)
        self._refresh.update(topics)
        self._rows |= rows
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = self._last = loop.create_task(self._run())

    def watch(self, channel: str, viewer: access.Viewer) -> None:
        """Re-check this socket's right to watch with every access check."""
        self.viewers[channel] = viewer

    def unwatch(self, channel: str) -> None:
        self.viewers.pop(channel, None)

    def unsubscribe(self, topics: list[str]) -> None:
        """The poller notices at its next tick that nobody watches and stops by itself."""
        self.topics.subtract(topics)
        self.topics = +self.topics  # drop topics nobody watches any more

    async def stopped(self) -> None:
        """Wait until the poller has stopped (and closed its connection) after the last socket."""
        if self._last is not None and self._last.get_loop() is asyncio.get_running_loop():
            await self._last

    def _demand(self) -> Demand:
        demand = Demand(set(self.topics), self._refresh, self._rows)
        self._refresh, self._rows = set(), set()
        return demand

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        channels = layer.ensure()
        tick = Tick()  # a fresh start: nothing is assumed about what sockets already have
        checked = time.monotonic()
        try:
            while self.topics:
                viewers = None
                if time.monotonic() - checked >= ACCESS_SECONDS:
                    viewers, checked = dict(self.viewers), time.monotonic()
                try:
                    events, refused = await loop.run_in_executor(
                        self._executor, self._run_tick, tick, self._demand(), viewers
                    )
                except Exception:
                    logger.exception("console tick failed; retrying next tick")
                    events, refused = [], set()
                for channel in refused:
                    self.unwatch(channel)
                    await channels.send(channel, {"type": "console.refused"})
                for topic, event in events:
                    await channels.group_send(group(topic), event)
                await asyncio.sleep(TICK_SECONDS)
        finally:
            # Checked and cleared with no await in between, so a socket arriving from now
            # on starts a new poller instead of waiting on this one.
            if self._task is asyncio.current_task():
                self._task = None
            # Nothing to poll: give the connection back rather than hold it while idle.
            await loop.run_in_executor(self._executor, connections.close_all)

    @staticmethod
    def _run_tick(
        tick: Tick, demand: Demand, viewers: dict[str, access.Viewer] | None
    ) -> tuple[list[tuple[str, dict]], set[str]]:
        close_old_connections()
        refused = access.refused(viewers) if viewers else set()
        return tick.run(demand.topics, demand.refresh, demand.rows), refused


poller = Poller()
