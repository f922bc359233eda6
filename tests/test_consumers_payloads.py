"""The console socket and encrypted payloads: pushed in the clear only to a user with
``queues.view_payloads``, as "🔒 encrypted" to everyone else, neither variant to the other."""

from __future__ import annotations

import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission, User
from django.db import connections

from queues.console import live
from queues.encryption import HIDDEN
from queues.testing import run_jobs
from taskweb.asgi import application

from . import tasks
from .console_helpers import SOCKET_TIMEOUT, make_viewer, receive_until, session_cookie, socket_to
from .test_encryption import SECRET, grant_payloads, key  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio, pytest.mark.usefixtures("key")]


@pytest_asyncio.fixture(autouse=True)
async def close_thread_connections():
    """As in test_consumers: the helper thread's connection must not outlive the test."""
    yield
    await live.poller.stopped()
    await sync_to_async(connections.close_all)()


async def watching(user: User, path: str, ready: str) -> WebsocketCommunicator:
    """A socket of ``user`` at ``path``, once it has had the fragment holding ``ready``."""
    socket = socket_to(application, path, await sync_to_async(session_cookie)(user))
    connected, _ = await socket.connect()
    assert connected
    await receive_until(socket, ready)
    return socket


async def messages_until(socket: WebsocketCommunicator, text: str) -> str:
    """Every message the socket gets, up to the one holding ``text``, as one text."""
    received = []
    while True:
        received.append(await socket.receive_from(timeout=SOCKET_TIMEOUT))
        if text in received[-1]:
            return "".join(received)


async def reader_and_viewer() -> tuple[User, User]:
    """A user who may see payloads in the clear, and a read-only one who may not."""
    return await sync_to_async(grant_payloads)("reader"), await sync_to_async(make_viewer)()


async def result_pushed_to(user: User) -> str:
    """What a socket of ``user`` on an encrypted job's page is pushed while the job runs."""
    job = await sync_to_async(tasks.secret_sum.enqueue)(2, 3, label=SECRET)
    socket = await watching(user, f"/ws/console/?page=job&id={job.id}", 'id="job-live"')
    await sync_to_async(run_jobs)()
    pushed = await messages_until(socket, "status-succeeded")
    await socket.disconnect()
    return pushed


async def test_a_socket_whose_user_may_see_payloads_gets_a_result_pushed_in_the_clear():
    pushed = await result_pushed_to(await sync_to_async(grant_payloads)("reader"))
    assert f"&quot;label&quot;: &quot;{SECRET}&quot;" in pushed and HIDDEN not in pushed


async def test_a_socket_whose_user_may_not_gets_the_hidden_marker():
    pushed = await result_pushed_to(await sync_to_async(make_viewer)())
    assert HIDDEN in pushed and SECRET not in pushed


async def test_two_sockets_on_one_job_each_get_their_own_variant_and_never_the_others():
    job = await sync_to_async(tasks.secret_failure.enqueue)(SECRET)
    reader, viewer = await reader_and_viewer()
    path = f"/ws/console/?page=job&id={job.id}"
    revealed = await watching(reader, path, 'id="job-live"')
    hidden = await watching(viewer, path, 'id="job-live"')
    await sync_to_async(run_jobs)()
    to_reader = await messages_until(revealed, 'id="attempt-1"')
    to_viewer = await messages_until(hidden, 'id="attempt-1"')
    assert f"cannot use {SECRET}" in to_reader and HIDDEN not in to_reader, "attempt and last error"
    assert HIDDEN in to_viewer and SECRET not in to_viewer
    await revealed.disconnect()
    await hidden.disconnect()


async def test_dead_letter_groups_are_pushed_in_the_clear_only_to_those_who_may_see_payloads():
    reader, viewer = await reader_and_viewer()
    revealed = await watching(reader, "/ws/console/?page=dead", 'id="dead-groups"')
    hidden = await watching(viewer, "/ws/console/?page=dead", 'id="dead-groups"')
    await sync_to_async(tasks.secret_failure.enqueue)(SECRET)
    await sync_to_async(run_jobs)()
    to_reader = await messages_until(revealed, "NonRetryable")
    to_viewer = await messages_until(hidden, "NonRetryable")
    assert f"cannot use {SECRET}" in to_reader and HIDDEN not in to_reader
    assert HIDDEN in to_viewer and SECRET not in to_viewer
    await revealed.disconnect()
    await hidden.disconnect()


async def test_a_socket_whose_user_loses_view_payloads_gets_its_page_again_without_them():
    job = await sync_to_async(tasks.secret_sum.enqueue)(2, 3, label=SECRET)
    await sync_to_async(run_jobs)()
    reader, _ = await reader_and_viewer()
    socket = await watching(reader, f"/ws/console/?page=job&id={job.id}", SECRET)
    payloads = await sync_to_async(Permission.objects.get)(codename="view_payloads")
    await sync_to_async(reader.user_permissions.remove)(payloads)
    again = await receive_until(socket, 'id="job-live"')
    assert HIDDEN in again and SECRET not in again
    await socket.disconnect()
