"""The TCP protocol's permissions and limits, against real ``runbroker`` processes.

With AUTH required, each verb needs its action in ``queues.rules`` for the token as it
is now; every server closes connections that do not authenticate in time, that stay
idle, or that come beyond its connection cap.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User

from queues import auth_tokens
from queues.models import ApiToken, Job, Queue
from queues.states import Status

from .brokers import BrokerProcess, LineClient
from .console_helpers import make_user, make_viewer
from .factories import make_token
from .processes import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

AUTH_TIMEOUT = 2


@pytest.fixture(scope="module")
def auth_broker(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[BrokerProcess]:
    with django_db_blocker.unblock():
        broker = BrokerProcess(
            "--auth", "--auth-timeout", str(AUTH_TIMEOUT), log_dir=tmp_path_factory.mktemp("runbroker")
        )
    yield broker
    broker.stop()


@pytest.fixture
def connect(auth_broker) -> Iterator:
    """Open a connection to the AUTH-requiring broker, authenticated with ``token`` if given."""
    opened: list[LineClient] = []

    def open_one(token: str | None = None) -> LineClient:
        client = auth_broker.client()
        opened.append(client)
        if token is not None:
            assert client(f"AUTH {token}") == "OK"
        return client

    yield open_one
    for client in opened:
        client.close()


# --- each verb needs its permission -----------------------------------------------------------


def test_a_read_scope_token_may_list(connect):
    assert connect(make_token(scope="read"))("LIST") == "OK default"


def test_a_read_scope_token_may_not_enqueue(connect):
    reply = connect(make_token(scope="read"))("ENQUEUE default hi")
    assert reply == "ERR The token 'tests' has the read scope; job.enqueue needs the operate scope."
    assert not Job.objects.exists()


def test_a_read_scope_token_may_not_dequeue(connect):
    assert "job.work needs the operate scope" in connect(make_token(scope="read"))("DEQUEUE default")


def test_an_operate_scope_token_may_enqueue_dequeue_and_ack(connect):
    client = connect(make_token(scope="operate"))
    job_id = client("ENQUEUE default hi").split()[1]
    assert (client("DEQUEUE default"), client(f"ACK {job_id}")) == (f"JOB {job_id} hi", "OK")
    assert Job.objects.get(pk=job_id).status == Status.SUCCEEDED


def test_an_operate_scope_token_may_declare_an_existing_queue(connect):
    assert connect(make_token(scope="operate"))("CREATE default") == "OK"


def test_an_operate_scope_token_may_not_create_a_queue(connect):
    reply = connect(make_token(scope="operate"))("CREATE fresh")
    assert reply == "ERR The token 'tests' has the operate scope; queue.add needs the admin scope."
    assert not Queue.objects.filter(name="fresh").exists()


def test_an_admin_scope_token_may_create_a_queue(connect):
    assert connect(make_token(scope="admin"))("CREATE fresh") == "OK"
    assert Queue.objects.filter(name="fresh").exists()


def test_an_admin_scope_token_of_a_read_only_owner_may_not_enqueue(connect):
    reply = connect(make_token(user=make_viewer(), scope="admin"))("ENQUEUE default hi")
    assert "job.enqueue needs the queues.add_job permission, which viewer does not have" in reply
    assert not Job.objects.exists()


# --- a token that changes mid-connection ------------------------------------------------------


def _first_refusal(client: LineClient, line: str) -> tuple[str, int]:
    """Send ``line`` until it is refused (the server may trust what it read for ~1 s):
    the refusal, and how many times it was accepted before."""
    replies: list[str] = []
    assert wait_until(lambda: replies.append(client(line)) or replies[-1].startswith("ERR "), timeout=15)
    return replies[-1], len(replies) - 1


def test_a_token_revoked_mid_connection_stops_working_on_that_connection(connect):
    client = connect(make_token("ci", scope="read"))
    assert client("LIST") == "OK default"
    auth_tokens.revoke("ci")
    refusal, _ = _first_refusal(client, "LIST")
    assert refusal == "ERR the token was revoked or its owner deactivated; send AUTH <token>"
    assert client("LIST") == "ERR authentication required: send AUTH <token> first"


def test_a_token_whose_owner_is_deactivated_mid_connection_stops_working(connect):
    owner = make_viewer("ops")
    client = connect(make_token(user=owner, scope="read"))
    User.objects.filter(pk=owner.pk).update(is_active=False)
    assert _first_refusal(client, "LIST")[0].startswith("ERR the token was revoked or its owner deactivated")


def test_a_token_whose_scope_is_narrowed_mid_connection_loses_what_it_no_longer_covers(connect):
    client = connect(make_token("ci", scope="operate"))
    assert client("ENQUEUE default one").startswith("OK ")
    ApiToken.objects.update(scope="read")
    refusal, accepted = _first_refusal(client, "ENQUEUE default two")
    assert "job.enqueue needs the operate scope" in refusal
    assert (client("LIST"), Job.objects.count()) == ("OK default", 1 + accepted)


def test_a_token_whose_owner_loses_staff_status_mid_connection_may_not_even_list(connect):
    owner = make_user("ops", perms=("view_job",))
    client = connect(make_token(user=owner, scope="read"))
    User.objects.filter(pk=owner.pk).update(is_staff=False)
    assert "ops is not an active staff user" in _first_refusal(client, "LIST")[0]


# --- limits -------------------------------------------------------------------------------------


def test_a_connection_that_does_not_authenticate_in_time_is_told_and_closed(connect):
    client = connect()
    assert client.read() == f"ERR no AUTH within {AUTH_TIMEOUT}s; closing the connection"
    assert client.closed_by_server()


def test_commands_without_auth_do_not_keep_a_connection_open(connect):
    client = connect()
    started = time.monotonic()
    replies = []
    while time.monotonic() - started < AUTH_TIMEOUT + 10:
        try:
            reply = client("LIST")
        except OSError:  # the server hung up while this line was on its way
            break
        if not reply:
            break
        replies.append(reply)
        time.sleep(0.2)
    assert replies[-1] == f"ERR no AUTH within {AUTH_TIMEOUT}s; closing the connection"


def test_an_authenticated_connection_outlives_the_auth_deadline(connect):
    client = connect(make_token(scope="read"))
    time.sleep(AUTH_TIMEOUT + 1)
    assert client("LIST") == "OK default"


@pytest.fixture
def broker_with(tmp_path) -> Iterator:
    started: list[BrokerProcess] = []

    def start(*args: str) -> BrokerProcess:
        started.append(BrokerProcess(*args, log_dir=tmp_path))
        return started[-1]

    yield start
    for broker in started:
        broker.stop()


def test_an_idle_connection_is_told_and_closed(broker_with):
    client = broker_with("--idle-timeout", "1").client()
    assert client("LIST") == "OK default"
    assert client.read() == "ERR idle for 1s; closing the connection"
    assert client.closed_by_server()


def test_a_connection_beyond_the_cap_gets_one_error_line_and_is_closed(broker_with):
    broker = broker_with("--max-connections", "2")
    first, second = broker.client(), broker.client()
    assert (first("LIST"), second("LIST")) == ("OK default", "OK default")
    third = broker.client()
    assert third.read() == "ERR too many connections (at most 2)"
    assert third.closed_by_server()


def test_a_closed_connection_frees_its_place_under_the_cap(broker_with):
    broker = broker_with("--max-connections", "1")
    first = broker.client()
    assert first("LIST") == "OK default"
    first.close()

    def listed() -> bool:
        client = broker.client()
        try:
            return client("LIST") == "OK default"
        finally:
            client.close()

    assert wait_until(listed, timeout=15)
