"""The TCP protocol against a real ``runbroker`` process, over real sockets."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator

import pytest

from queues.compat import TaskError
from queues.exceptions import Nack
from queues.models import Attempt, Job
from queues.states import Status

from . import servers
from .brokers import BrokerProcess, LineClient
from .factories import make_job, make_queue, make_token
from .processes import run_python, wait_until

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(tmp_path) -> Iterator[BrokerProcess]:
    broker = BrokerProcess("--lease", "1", log_dir=tmp_path)
    yield broker
    broker.stop()


@pytest.fixture
def client(server) -> LineClient:
    return server.client()


def test_create_then_list_shows_the_queue(client):
    assert (client("CREATE emails"), client("LIST")) == ("OK", "OK default emails")


def test_create_of_an_existing_queue_is_ok(client):
    assert client("CREATE default") == "OK"


def test_create_with_a_bad_name_is_an_error(client):
    assert client("CREATE bad/name").startswith("ERR ")


def test_enqueue_stores_a_raw_job_with_the_payload(client):
    reply = client("ENQUEUE default hello  wide world")
    job = Job.objects.get(pk=int(reply.split()[1]))
    assert (reply.split()[0], job.task_path, job.args) == ("OK", "raw", ["hello  wide world"])


def test_enqueue_onto_an_unknown_queue_is_an_error_naming_it(client):
    assert "'nope'" in client("ENQUEUE nope hi")
    assert not Job.objects.exists()


def test_enqueue_without_a_payload_is_an_error(client):
    assert client("ENQUEUE default").startswith("ERR usage")


def test_dequeue_gives_the_job_and_its_payload(client):
    job_id = client("ENQUEUE default hi there").split()[1]
    assert client("DEQUEUE default") == f"JOB {job_id} hi there"


def test_dequeue_of_an_empty_queue_is_empty(client):
    assert client("DEQUEUE default") == "EMPTY"


def test_dequeue_never_gives_a_python_task_job(client):
    make_job("tests.tasks.noop")
    assert client("DEQUEUE default") == "EMPTY"


def test_dequeue_of_a_paused_queue_is_empty(client):
    client("ENQUEUE default hi")
    make_queue("default", paused=True)
    assert client("DEQUEUE default") == "EMPTY"


def test_ack_marks_the_job_succeeded(client):
    job_id = client("ENQUEUE default hi").split()[1]
    client("DEQUEUE default")
    assert client(f"ACK {job_id}") == "OK"
    assert Job.objects.get(pk=job_id).status == Status.SUCCEEDED


def test_ack_of_a_job_leased_to_another_connection_is_an_error(server, client):
    job_id = client("ENQUEUE default hi").split()[1]
    client("DEQUEUE default")
    assert server.client()(f"ACK {job_id}") == f"ERR job {job_id} is not leased to this connection"
    assert Job.objects.get(pk=job_id).status == Status.RUNNING


def test_ack_of_an_unknown_id_is_an_error(client):
    assert client("ACK 987654").startswith("ERR ")


def test_ack_of_a_malformed_id_is_an_error(client):
    assert client("ACK x1") == "ERR usage: ACK <id>"


def test_nack_fails_the_attempt_for_a_retry_with_the_reason(client):
    job_id = client("ENQUEUE default hi").split()[1]
    client("DEQUEUE default")
    assert client(f"NACK {job_id} upstream down") == "OK"
    attempt = Attempt.objects.get(job_id=job_id)
    assert (Job.objects.get(pk=job_id).status, attempt.error_message) == (Status.SCHEDULED, "upstream down")
    assert TaskError(exception_class_path=attempt.error_type, traceback="").exception_class is Nack


def test_a_job_not_acked_within_its_lease_is_redelivered(server, client):
    job_id = client("ENQUEUE default hi").split()[1]
    client("DEQUEUE default")
    other = server.client()
    assert wait_until(lambda: other("DEQUEUE default") == f"JOB {job_id} hi", timeout=60)


def test_an_ack_after_the_lease_expired_is_an_error(server, client):
    job_id = client("ENQUEUE default hi").split()[1]
    client("DEQUEUE default")
    wait_until(lambda: Job.objects.get(pk=job_id).status != Status.RUNNING, timeout=60)
    assert "lease expired" in client(f"ACK {job_id}")


def test_an_unknown_command_is_an_error_and_the_connection_stays_usable(client):
    assert (client("FROB x").startswith("ERR unknown command"), client("LIST")) == (True, "OK default")


def test_an_empty_line_is_an_error(client):
    assert client("").startswith("ERR empty line")


def test_an_oversize_line_is_an_error_and_the_next_line_works(client):
    reply = client("ENQUEUE default " + "x" * 70_000)
    assert (reply, client("LIST")) == ("ERR line longer than 65536 bytes", "OK default")
    assert not Job.objects.exists()


def test_a_line_that_is_not_utf8_is_an_error(client):
    assert client.send_raw(b"ENQUEUE default \xff\xfe\n") == "ERR the line is not valid UTF-8"


def test_a_nul_character_is_an_error(client):
    assert client("ENQUEUE default a\x00b").startswith("ERR NUL")


def test_concurrent_producers_and_consumers_deliver_each_job_once(server):
    per_producer, producers, consumers = 25, 4, 4
    acked: list[int] = []
    lock = threading.Lock()

    def produce() -> None:
        client = server.client()
        for n in range(per_producer):
            assert client(f"ENQUEUE default job {n}").startswith("OK ")

    def consume() -> None:
        client = server.client()
        while True:
            with lock:
                if len(acked) >= per_producer * producers:
                    return
            reply = client("DEQUEUE default")
            if reply.startswith("JOB "):
                job_id = int(reply.split()[1])
                assert client(f"ACK {job_id}") == "OK"
                with lock:
                    acked.append(job_id)

    threads = [threading.Thread(target=produce) for _ in range(producers)]
    threads += [threading.Thread(target=consume) for _ in range(consumers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(acked) == len(set(acked)) == per_producer * producers
    assert set(Job.objects.values_list("status", flat=True)) == {Status.SUCCEEDED}


@pytest.fixture
def auth_server(tmp_path) -> Iterator[BrokerProcess]:
    broker = BrokerProcess("--auth", log_dir=tmp_path)
    yield broker
    broker.stop()


def test_with_auth_required_commands_before_auth_are_refused(auth_server):
    assert auth_server.client()("LIST").startswith("ERR authentication required")


def test_with_auth_required_a_bad_token_is_refused(auth_server):
    assert auth_server.client()("AUTH tw_nope_nope") == "ERR invalid or revoked token"


def test_with_auth_required_a_valid_token_opens_the_connection(auth_server):
    client = auth_server.client()
    assert (client(f"AUTH {make_token('tcp')}"), client("LIST")) == ("OK", "OK default")


@pytest.mark.parametrize(
    "option, refusal",
    [
        (["--port", "70000"], "--port must be 0..65535"),
        (["--max-connections", "0"], "--max-connections at least 1"),
    ],
)
def test_runbroker_refuses_a_bad_option_clearly(option, refusal):
    done = run_python("manage.py", "runbroker", *option)
    assert (done.returncode, refusal in done.stderr) == (1, True)


class ForeignServer(socketserver.ThreadingTCPServer):
    """Someone else's server that answers every line like a broker would."""

    daemon_threads = True

    def __init__(self) -> None:
        self.connections = 0

        class Handler(socketserver.StreamRequestHandler):
            def handle(handler) -> None:
                self.connections += 1
                for _ in handler.rfile:
                    handler.wfile.write(b"OK 1\n")

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture
def foreign() -> Iterator[ForeignServer]:
    server = ForeignServer()
    yield server
    server.close()


def test_runbroker_on_port_0_logs_the_port_it_bound_and_its_pid(server):
    line = f"runbroker listening on 127.0.0.1:{server.port} (pid {server.proc.pid}, auth off, lease 1s,"
    assert server.port != 0 and line in server.output()


def test_the_fixture_never_talks_to_a_foreign_server_on_the_port_its_broker_was_given(foreign, tmp_path):
    # The broker cannot bind the taken port and exits: the fixture says so, instead of
    # finding "something listening" there and handing the test a client of the stranger.
    with pytest.raises(servers.ServerExited, match=r"Cannot listen on 127\.0\.0\.1"):
        BrokerProcess("--port", str(foreign.port), log_dir=tmp_path)
    assert foreign.connections == 0


def test_the_fixture_talks_to_its_own_broker_while_a_foreign_server_listens(foreign, client):
    job_id = client("ENQUEUE default mine").split()[1]
    assert (Job.objects.get(pk=job_id).args, foreign.connections) == (["mine"], 0)
