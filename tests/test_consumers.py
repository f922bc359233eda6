"""The console socket: who may open it, and that changes reach it."""

from __future__ import annotations

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections

from queues import broker
from queues.console import live
from taskweb.asgi import application

from .console_helpers import (
    HOST,
    make_operator,
    make_user,
    make_viewer,
    receive_until,
    session_cookie,
    socket_to,
)
from .factories import make_job

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@pytest_asyncio.fixture(autouse=True)
async def close_thread_connections():
    """sync_to_async runs ORM calls in a helper thread whose connection would outlive the
    test and keep PostgreSQL from dropping the test database."""
    yield
    await live.poller.stopped()
    await sync_to_async(connections.close_all)()


def communicator(
    path: str, cookie: str | None = None, origin: str = f"http://{HOST}"
) -> WebsocketCommunicator:
    return socket_to(application, path, cookie, origin)


async def closed_on_connect(socket: WebsocketCommunicator) -> bool:
    connected, _ = await socket.connect()
    await socket.disconnect()
    return not connected


async def test_an_anonymous_socket_is_refused():
    assert await closed_on_connect(communicator("/ws/console/?page=overview"))


async def test_a_logged_in_user_who_is_not_staff_is_refused():
    user = await sync_to_async(make_user)("plain", staff=False)
    cookie = await sync_to_async(session_cookie)(user)
    assert await closed_on_connect(communicator("/ws/console/?page=overview", cookie))


async def test_staff_without_view_permission_is_refused():
    user = await sync_to_async(make_user)("bare-staff")
    cookie = await sync_to_async(session_cookie)(user)
    assert await closed_on_connect(communicator("/ws/console/?page=overview", cookie))


async def test_a_socket_from_another_origin_is_refused():
    cookie = await sync_to_async(session_cookie)(await sync_to_async(make_operator)())
    assert await closed_on_connect(communicator("/ws/console/?page=overview", cookie, "http://evil.example"))


async def test_a_socket_naming_no_known_page_is_refused():
    cookie = await sync_to_async(session_cookie)(await sync_to_async(make_operator)())
    assert await closed_on_connect(communicator("/ws/console/?page=nothing", cookie))


async def test_a_new_job_reaches_a_staff_socket_on_the_overview():
    cookie = await sync_to_async(session_cookie)(await sync_to_async(make_operator)())
    socket = communicator("/ws/console/?page=overview", cookie)
    connected, _ = await socket.connect()
    assert connected
    await receive_until(socket, 'id="queue-table"')
    await sync_to_async(make_job)(queue="mail")
    message = await receive_until(socket, 'data-queue="mail"')
    assert '<td data-count="queued">1</td>' in message.split('data-queue="mail"')[1]
    await socket.disconnect()


async def test_a_read_only_socket_also_receives_changes():
    cookie = await sync_to_async(session_cookie)(await sync_to_async(make_viewer)())
    job = await sync_to_async(make_job)()
    socket = communicator(f"/ws/console/?page=job&id={job.id}", cookie)
    connected, _ = await socket.connect()
    assert connected
    await receive_until(socket, 'id="job-live"')
    await sync_to_async(broker.cancel)(job.id)
    message = await receive_until(socket, "status-cancelled")
    assert "hx-post" not in message  # no buttons for someone who may not act
    await socket.disconnect()
