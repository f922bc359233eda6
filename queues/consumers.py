"""The console's WebSocket: one per open page, push only.

Actions never travel over the socket (htmx ws-send carries no CSRF token); they are
HTMX POSTs. The socket is for logged-in staff with the view permission only (asgi.py
checks its Origin), and stays so: the poller re-checks every open socket's user and
session and closes (4403) those that lost the right.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from .console import access, layer, live, sockets
from .console.permissions import allowed_actions, is_operator

FORBIDDEN = 4403
BAD_PAGE = 4400


def _access(user: Any) -> frozenset[str] | None:
    """None for anyone who may not watch; otherwise the actions this user may take."""
    if user is None or not is_operator(user):
        return None
    return allowed_actions(user)


class ConsoleConsumer(AsyncWebsocketConsumer):
    channel_layer_alias = layer.ALIAS  # queues.routing makes sure it exists
    page: sockets.SocketPage | None = None

    async def connect(self) -> None:
        allowed = await database_sync_to_async(_access)(self.scope.get("user"))
        if allowed is None:
            await self.close(code=FORBIDDEN)
            return
        query = dict(parse_qsl(self.scope.get("query_string", b"").decode()))
        page = sockets.page_for(query, allowed)
        if page is None:
            await self.close(code=BAD_PAGE)
            return
        self.page = page
        for topic in page.topics:
            await self.channel_layer.group_add(live.group(topic), self.channel_name)
        await self.accept()
        viewer = access.Viewer(self.scope["user"].pk, self.scope["session"].session_key)
        live.poller.watch(self.channel_name, viewer)
        live.poller.subscribe(page.topics, page.rows)

    async def disconnect(self, code: int) -> None:
        if self.page is None:
            return
        live.poller.unwatch(self.channel_name)
        for topic in self.page.topics:
            await self.channel_layer.group_discard(live.group(topic), self.channel_name)
        live.poller.unsubscribe(self.page.topics)
        self.page = None

    async def console_refused(self, event: dict[str, Any]) -> None:
        """The user may no longer watch: stop sending, then close."""
        await self.disconnect(FORBIDDEN)
        await self.close(code=FORBIDDEN)

    async def _push(self, html: str) -> None:
        if html:
            await self.send(text_data=html)

    async def console_html(self, event: dict[str, Any]) -> None:
        await self._push(event["html"] if self.page else "")

    async def jobs_changed(self, event: dict[str, Any]) -> None:
        await self._push(self.page.jobs_changed(event) if self.page else "")

    async def job_changed(self, event: dict[str, Any]) -> None:
        await self._push(self.page.job_changed(event) if self.page else "")

    async def dead_changed(self, event: dict[str, Any]) -> None:
        await self._push(self.page.dead_changed(event) if self.page else "")
