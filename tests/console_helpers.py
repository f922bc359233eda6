"""Users and sessions for console tests: staff, read-only staff, and plain users."""

from __future__ import annotations

from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission, User
from django.test import Client

PASSWORD = "console-test-password"
HOST = "127.0.0.1"
SOCKET_TIMEOUT = 10

PAGES = ["", "queues/default/", "jobs/", "jobs/{job}/", "dead/", "workers/", "schedules/", "api/docs"]
"""Every console page, and the API docs, relative to where queues.urls is mounted."""


def make_user(
    username: str, *, staff: bool = True, superuser: bool = False, perms: tuple[str, ...] = ()
) -> User:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=staff, is_superuser=superuser)
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="queues", codename=codename))
    return user


def make_operator(username: str = "operator") -> User:
    return make_user(username, superuser=True)


def make_viewer(username: str = "viewer") -> User:
    """Staff with view permissions only: the read-only role."""
    return make_user(username, perms=("view_job", "view_queue", "view_deadletter", "view_worker"))


def client_for(user: User | None, **kwargs) -> Client:
    client = Client(HTTP_HOST=HOST, **kwargs)
    if user is not None:
        client.force_login(user)
    return client


def session_cookie(user: User) -> str:
    return client_for(user).cookies["sessionid"].value


def socket_to(
    application, path: str, cookie: str | None = None, origin: str = f"http://{HOST}"
) -> WebsocketCommunicator:
    """A console socket as a browser opens it: from a page of ``origin``, with the session."""
    headers = [(b"origin", origin.encode()), (b"host", HOST.encode())]
    if cookie:
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def receive_until(socket: WebsocketCommunicator, text: str) -> str:
    """Messages until one contains ``text`` (the first ones may be the initial refresh)."""
    while True:
        message = await socket.receive_from(timeout=SOCKET_TIMEOUT)
        if text in message:
            return message
