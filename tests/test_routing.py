"""The console's socket is found wherever queues.urls is mounted (queues/routing.py, queues/asgi.py)."""

from __future__ import annotations

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.core.asgi import get_asgi_application
from django.db import connections

from queues.asgi import with_console
from queues.console import live

from .console_helpers import SOCKET_TIMEOUT, make_operator, receive_until, session_cookie, socket_to
from .factories import make_job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


class Echo(AsyncWebsocketConsumer):
    """A project's own socket, to show that sockets which are not the console's reach it."""

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.send(text_data=f"echo {text_data}")


@pytest_asyncio.fixture(autouse=True)
async def close_thread_connections():
    yield
    await live.poller.stopped()
    await sync_to_async(connections.close_all)()


@pytest.fixture
def under_ops(settings) -> None:
    settings.ROOT_URLCONF = "tests.prefixed_urls"


async def operator_cookie() -> str:
    return await sync_to_async(session_cookie)(await sync_to_async(make_operator)())


async def opens(application, path: str, cookie: str) -> bool:
    socket = socket_to(application, path, cookie)
    connected, _ = await socket.connect()
    await socket.disconnect()
    return connected


async def shows_a_new_queue_live(application, path: str) -> bool:
    """Open the overview's socket at ``path``; True once a queue made afterwards shows up on it."""
    socket = socket_to(application, path, await operator_cookie())
    connected, _ = await socket.connect()
    if not connected:
        return False
    await receive_until(socket, 'id="queue-table"')
    await sync_to_async(make_job)(queue="mail")
    await receive_until(socket, 'data-queue="mail"')
    await socket.disconnect()
    return True


async def test_the_console_socket_under_a_prefix_connects_and_receives_changes(under_ops):
    assert await shows_a_new_queue_live(
        with_console(get_asgi_application()), "/ops/ws/console/?page=overview"
    )


async def test_a_project_without_channel_layers_still_gets_live_updates(settings):
    del settings.CHANNEL_LAYERS
    assert await shows_a_new_queue_live(with_console(get_asgi_application()), "/ws/console/?page=overview")


async def test_under_a_prefix_the_root_socket_path_is_not_the_console(under_ops):
    assert not await opens(
        with_console(get_asgi_application()), "/ws/console/?page=overview", await operator_cookie()
    )


async def test_a_console_mounted_twice_has_a_socket_under_each_mount(settings):
    settings.ROOT_URLCONF = "tests.twice_mounted_urls"
    application, cookie = with_console(get_asgi_application()), await operator_cookie()
    assert await opens(application, "/ws/console/?page=overview", cookie)
    assert await opens(application, "/ops/ws/console/?page=overview", cookie)


async def test_sockets_that_are_not_the_consoles_go_to_the_projects_own_application(under_ops):
    application = with_console(get_asgi_application(), websocket=Echo.as_asgi())
    socket = socket_to(application, "/chat/", await operator_cookie())
    connected, _ = await socket.connect()
    assert connected
    await socket.send_to(text_data="hi")
    assert await socket.receive_from(timeout=SOCKET_TIMEOUT) == "echo hi"
    await socket.disconnect()


async def test_without_a_project_application_other_sockets_are_refused(under_ops):
    assert not await opens(with_console(get_asgi_application()), "/chat/", await operator_cookie())
