"""The console's WebSocket: one per open page, push only.

Actions never travel over the socket (htmx ws-send carries no CSRF token); they are
HTMX POSTs. The socket is for logged-in staff with the view permission only (routing
checks its Origin), and stays so: the poller re-checks every open socket's user and
session and closes (4403) those that lost the right.

The consumer is thin: it checks who opened it, reads which page it shows from its
address (``watches.watch_for``), subscribes to the poller and sends what the poller
hands it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from ..rules import sees_payloads
from . import access, live, watches
from .permissions import allowed_actions, is_operator

FORBIDDEN = 4403
BAD_PAGE = 4400
NO_LAYER = "queues.console.no-layer"
"""An alias no project configures: the poller calls its sockets directly, so the console's
sockets need no channel layer (and open no channel on a project's Redis)."""


def _access(user: Any) -> tuple[frozenset[str], bool] | None:
    """None for anyone who may not watch; otherwise the actions this user may take, and
    whether they may see encrypted payloads in the clear."""
    if user is None or not is_operator(user):
        return None
    return allowed_actions(user), sees_payloads(user)


class ConsoleConsumer(AsyncWebsocketConsumer):
    channel_layer_alias = NO_LAYER
    subscribed = False

    async def connect(self) -> None:
        found = await database_sync_to_async(_access)(self.scope.get("user"))
        if found is None:
            await self.close(code=FORBIDDEN)
            return
        allowed, reveal = found
        query = dict(parse_qsl(self.scope.get("query_string", b"").decode()))
        watch = watches.watch_for(query, allowed)
        if watch is None:
            await self.close(code=BAD_PAGE)
            return
        await self.accept()
        viewer = access.Viewer(self.scope["user"].pk, self.scope["session"].session_key)
        live.poller.subscribe(self, watch, viewer, reveal)
        self.subscribed = True

    async def disconnect(self, code: int) -> None:
        if self.subscribed:
            live.poller.unsubscribe(self)
            self.subscribed = False

    async def push(self, html: str) -> None:
        """Fragments for this socket's page, from the poller."""
        if self.subscribed:
            await self.send(text_data=html)

    async def refuse(self) -> None:
        """The user may no longer watch: stop sending, then close."""
        await self.disconnect(FORBIDDEN)
        await self.close(code=FORBIDDEN)
