"""The console socket: who may open it, and that changes reach it."""

from __future__ import annotations

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission, User
from django.contrib.sessions.backends.db import SessionStore
from django.db import connections

from queues import lifecycle
from queues.console import live
from queues.console.consumer import FORBIDDEN
from taskweb.asgi import application

from .console_helpers import (
    HOST,
    SOCKET_TIMEOUT,
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


async def opened(path: str, make_user=make_operator) -> WebsocketCommunicator:
    """A socket at ``path``, connected with the session of a new user from ``make_user``."""
    cookie = await sync_to_async(session_cookie)(await sync_to_async(make_user)())
    socket = communicator(path, cookie)
    connected, _ = await socket.connect()
    assert connected
    return socket


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
    socket = await opened("/ws/console/?page=overview")
    await receive_until(socket, 'id="queue-table"')
    await sync_to_async(make_job)(queue="mail")
    message = await receive_until(socket, 'data-queue="mail"')
    assert '<td data-count="queued">1</td>' in message.split('data-queue="mail"')[1]
    await socket.disconnect()


async def test_a_read_only_socket_also_receives_changes():
    job = await sync_to_async(make_job)()
    socket = await opened(f"/ws/console/?page=job&id={job.id}", make_viewer)
    await receive_until(socket, 'id="job-live"')
    await sync_to_async(lifecycle.cancel)(job.id)
    message = await receive_until(socket, "status-cancelled")
    assert "hx-post" not in message  # no buttons for someone who may not act
    await socket.disconnect()


async def test_a_list_socket_gets_the_status_of_rows_in_its_range_from_its_filter_alone():
    job = await sync_to_async(make_job)()
    socket = await opened(f"/ws/console/?page=jobs&queue=default&oldest={job.id}&newest={job.id}")
    await receive_until(socket, f'data-cell="job-{job.id}-status" class="status status-queued"')
    await sync_to_async(lifecycle.cancel)(job.id)
    await receive_until(socket, f'data-cell="job-{job.id}-status" class="status status-cancelled"')
    await socket.disconnect()


# --- a socket whose user may no longer watch is closed -------------------------------------


async def _watching(cookie: str) -> WebsocketCommunicator:
    socket = communicator("/ws/console/?page=overview", cookie)
    connected, _ = await socket.connect()
    assert connected
    await receive_until(socket, 'id="queue-table"')
    return socket


async def close_code(socket: WebsocketCommunicator) -> int:
    """The code the server closed the socket with (fragments sent before it are skipped)."""
    while True:
        output = await socket.receive_output(timeout=SOCKET_TIMEOUT)
        if output["type"] == "websocket.close":
            await socket.disconnect()
            return output["code"]


async def _viewer_socket() -> tuple[User, str, WebsocketCommunicator]:
    user = await sync_to_async(make_viewer)()
    cookie = await sync_to_async(session_cookie)(user)
    return user, cookie, await _watching(cookie)


@pytest.mark.parametrize("change", [{"is_staff": False}, {"is_active": False}], ids=["not-staff", "inactive"])
async def test_a_socket_closes_when_its_user_loses_staff_status_or_is_deactivated(change):
    user, _, socket = await _viewer_socket()
    await sync_to_async(User.objects.filter(pk=user.pk).update)(**change)
    assert await close_code(socket) == FORBIDDEN


async def test_a_socket_closes_when_its_user_loses_the_view_permission():
    user, _, socket = await _viewer_socket()
    view = await sync_to_async(Permission.objects.get)(codename="view_job")
    await sync_to_async(user.user_permissions.remove)(view)
    assert await close_code(socket) == FORBIDDEN


async def test_a_socket_closes_when_its_session_ends_by_logging_out():
    _, cookie, socket = await _viewer_socket()
    await sync_to_async(SessionStore(session_key=cookie).delete)()
    assert await close_code(socket) == FORBIDDEN


async def test_a_socket_closes_when_its_user_changes_their_password_elsewhere():
    user, _, socket = await _viewer_socket()

    def change_password() -> None:
        user.set_password("a-new-password")
        user.save()

    await sync_to_async(change_password)()
    assert await close_code(socket) == FORBIDDEN


async def test_only_the_socket_that_lost_its_right_closes():
    _, cookie, leaving = await _viewer_socket()
    staying = await _watching(await sync_to_async(session_cookie)(await sync_to_async(make_operator)()))
    await sync_to_async(SessionStore(session_key=cookie).delete)()
    assert await close_code(leaving) == FORBIDDEN
    await sync_to_async(make_job)(queue="mail")
    await receive_until(staying, 'data-queue="mail"')
    await staying.disconnect()
