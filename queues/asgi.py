"""Live updates for the console in a project's ASGI application: one line in its asgi.py.

    application = get_asgi_application()
    ...
    from queues.asgi import with_console
    application = with_console(application)

HTTP goes to the project's application as before; WebSockets opened at the console's
socket URL (under whatever prefix ``queues.urls`` is mounted) go to the console.
"""

from __future__ import annotations

from asgiref.typing import ASGIApplication


def with_console(http: ASGIApplication, websocket: ASGIApplication | None = None) -> ASGIApplication:
    """``http`` for HTTP requests; the console's sockets to the console; any other socket to
    ``websocket`` (a project's own Channels routes), or refused when there is none."""
    # Imported here: they need Django's apps loaded, and a project may import this module
    # at the top of asgi.py, before get_asgi_application() has set Django up.
    from channels.routing import ProtocolTypeRouter

    from .console.routing import ConsoleSocketRouter

    return ProtocolTypeRouter({"http": http, "websocket": ConsoleSocketRouter(other=websocket)})
