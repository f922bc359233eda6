"""Which WebSocket is the console's: the one whose path resolves to its socket URL.

The console's socket has a URL pattern like any page (``console:socket`` in
urls.py), so pages ``reverse`` its address under whatever prefix the project
mounted ``queues.urls`` at, and this router asks the project's own URLconf about each
incoming socket. Mounted at the root, under ``ops/``, or both: the prefix is written
once, in the project's urls.py, and nothing else needs to know it.
"""

from __future__ import annotations

from typing import Any

from asgiref.typing import ASGIApplication, ASGIReceiveCallable, ASGISendCallable
from channels.auth import AuthMiddlewareStack
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import Resolver404, resolve

from .consumer import ConsoleConsumer
from .pages import live_socket


def _path(scope: dict[str, Any]) -> str:
    """The path as the URLconf sees it: without the prefix the server is mounted under."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def is_console_socket(scope: dict[str, Any]) -> bool:
    try:
        return resolve(_path(scope)).func is live_socket
    except Resolver404:
        return False


class ConsoleSocketRouter:
    """Sends the console's sockets to its consumer and every other one to ``other`` (or refuses it).

    Only pages served from an allowed host may open the console's socket, and only with
    a logged-in session; the consumer then checks staff status and permissions. The
    project's own sockets (``other``) keep whatever checks the project gave them.
    """

    def __init__(self, other: ASGIApplication | None = None) -> None:
        self.console = AllowedHostsOriginValidator(AuthMiddlewareStack(ConsoleConsumer.as_asgi()))
        self.other = other

    async def __call__(
        self, scope: dict[str, Any], receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if is_console_socket(scope):
            await self.console(scope, receive, send)
        elif self.other is not None:
            await self.other(scope, receive, send)
        else:
            # Closing before accepting refuses the handshake (the server answers 403).
            await receive()
            await send({"type": "websocket.close"})
