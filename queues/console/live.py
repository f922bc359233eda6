"""One poller per web process feeds every open console socket, one way.

daphne has no lifespan hook, so the poller starts with the first socket of the
process and stops with the last. Each tick it reads what changed once (jobs by
``updated_at``, queues, workers, dead letters) as typed updates for the topics its
sockets watch, renders each update's common fragments once, lets each socket's watch
keep its page's part, and hands every socket its HTML: database cost grows with the
number of distinct topics watched, never with open tabs. Sockets tell the poller only
which page they show, once, when they open.

The poller and its sockets live in the same process and event loop, so it calls
them directly: no channel layer sits between them.

Every ``ACCESS_SECONDS`` the same tick also re-checks, for all sockets at once, that
their users may still watch (``access.refused``); a socket whose user lost the right
or whose session ended is closed.

Encrypted payloads (results, error texts) are shown in the clear only to sockets whose
user has ``queues.view_payloads``, as pages show them: each fragment that can hold one is
rendered once per tick for each ``reveal`` value among its viewers (twice at most, never
once per socket), and each socket gets its variant. The same check re-reads who may see
payloads; a socket whose user gained or lost the permission gets its page again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from django.db import close_old_connections, connections

from . import access, render
from .events import Topic, Update
from .ticks import Tick
from .watches import Watch

logger = logging.getLogger("queues.console")

TICK_SECONDS = 0.5
ACCESS_SECONDS = 1.0


class Socket(Protocol):
    """What the poller needs of an open socket (``consumer.ConsoleConsumer``)."""

    async def push(self, html: str) -> None: ...

    async def refuse(self) -> None: ...


@dataclass(eq=False)
class Subscription:
    socket: Socket
    watch: Watch
    viewer: access.Viewer
    reveal: bool = False  # its user may see encrypted payloads in the clear (re-read with access)
    started: bool = False  # set in the poller's thread once the socket has had its first fragments


@dataclass
class Fanout:
    """Turns one tick's updates into each socket's HTML, sending common fragments only
    when they differ from what the topic's sockets already have (or to a new socket)."""

    last: dict[tuple[Topic, bool], str] = field(default_factory=dict)

    def html(self, updates: list[Update], subscriptions: list[Subscription]) -> dict[Subscription, str]:
        parts: dict[Subscription, list[str]] = {sub: [] for sub in subscriptions}
        fresh = {sub for sub in subscriptions if not sub.started}
        for sub in fresh:
            parts[sub].append(sub.watch.start())
            sub.started = True
        for update in updates:
            watching = [sub for sub in subscriptions if update.topic in sub.watch.topics]
            unchanged: dict[bool, bool] = {}
            shared = _variants(update, {sub.reveal for sub in watching})
            for reveal, text in shared.items():
                unchanged[reveal] = self.last.get((update.topic, reveal)) == text
                self.last[(update.topic, reveal)] = text
            for sub in watching:
                text = "" if unchanged[sub.reveal] and sub not in fresh else shared[sub.reveal]
                parts[sub].append(sub.watch.show(update, text, sub.reveal))
        return {sub: html for sub, texts in parts.items() if (html := "".join(texts))}


def _variants(update: Update, reveals: set[bool]) -> dict[bool, str]:
    """An update's common fragments for each ``reveal`` value among its viewers: rendered once
    for each when they may hold payloads, once for all when they cannot."""
    if not render.shows_payloads(update):
        return dict.fromkeys(reveals, render.shared(update)) if reveals else {}
    return {reveal: render.shared(update, reveal) for reveal in reveals}


class Poller:
    def __init__(self) -> None:
        self.subscriptions: dict[Socket, Subscription] = {}
        self._task: asyncio.Task | None = None
        self._last: asyncio.Task | None = None
        # One thread keeps one database connection for every tick of this process.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="console-poller")

    def subscribe(self, socket: Socket, watch: Watch, viewer: access.Viewer, reveal: bool = False) -> None:
        """The socket gets its page's fragments on the next tick, then what changes; encrypted
        payloads in the clear when ``reveal`` (its user has ``queues.view_payloads``)."""
        self.subscriptions[socket] = Subscription(socket, watch, viewer, reveal)
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._task = self._last = loop.create_task(self._run())

    def unsubscribe(self, socket: Socket) -> None:
        """The poller notices at its next tick that nobody watches and stops by itself."""
        self.subscriptions.pop(socket, None)

    async def stopped(self) -> None:
        """Wait until the poller has stopped (and closed its connection) after the last socket."""
        if self._last is not None and self._last.get_loop() is asyncio.get_running_loop():
            await self._last

    async def _push(self, sub: Subscription, text: str) -> None:
        """One socket that cannot take its HTML (its connection just broke) is dropped; the
        others still get theirs."""
        try:
            await sub.socket.push(text)
        except Exception:
            logger.exception("console socket failed to send; dropping it")
            self.unsubscribe(sub.socket)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        tick, fanout = Tick(), Fanout()  # a fresh start: nothing is assumed about what sockets have
        checked = time.monotonic()
        try:
            while self.subscriptions:
                check = time.monotonic() - checked >= ACCESS_SECONDS
                if check:
                    checked = time.monotonic()
                subscriptions = list(self.subscriptions.values())
                try:
                    html, refused = await loop.run_in_executor(
                        self._executor, _run_tick, tick, fanout, subscriptions, check
                    )
                except Exception:
                    logger.exception("console tick failed; retrying next tick")
                    html, refused = {}, []
                for sub in refused:
                    if self.subscriptions.get(sub.socket) is sub:
                        self.unsubscribe(sub.socket)
                        await sub.socket.refuse()
                for sub, text in html.items():
                    if self.subscriptions.get(sub.socket) is sub:  # still open
                        await self._push(sub, text)
                await asyncio.sleep(TICK_SECONDS)
        finally:
            # Checked and cleared with no await in between, so a socket arriving from now
            # on starts a new poller instead of waiting on this one.
            if self._task is asyncio.current_task():
                self._task = None
            # Nothing to poll: give the connection back rather than hold it while idle.
            await loop.run_in_executor(self._executor, connections.close_all)


def _run_tick(
    tick: Tick, fanout: Fanout, subscriptions: list[Subscription], check_access: bool
) -> tuple[dict[Subscription, str], list[Subscription]]:
    """In the poller's thread: who may no longer watch, what changed, and each socket's HTML."""
    close_old_connections()
    refused: list[Subscription] = []
    if check_access:
        gone = access.refused({id(sub): sub.viewer for sub in subscriptions})
        refused = [sub for sub in subscriptions if id(sub) in gone]
        subscriptions = [sub for sub in subscriptions if id(sub) not in gone]
        revealing = access.revealing({id(sub): sub.viewer for sub in subscriptions})
        for sub in subscriptions:
            if sub.reveal != (id(sub) in revealing):
                # Its page again, from the start, as its user may now see it.
                sub.reveal, sub.started = not sub.reveal, False
    topics = {topic for sub in subscriptions for topic in sub.watch.topics}
    refresh = {topic for sub in subscriptions if not sub.started for topic in sub.watch.topics}
    updates = tick.run(topics, refresh)
    return fanout.html(updates, subscriptions), refused


poller = Poller()
