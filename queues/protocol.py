"""The plain-text TCP protocol: one command per line, one reply per line, UTF-8.

    CREATE q               -> OK
    ENQUEUE q payload text -> OK <id>
    DEQUEUE q              -> JOB <id> <payload text> | EMPTY
    ACK <id>               -> OK
    NACK <id> [reason]     -> OK          (the attempt failed; retried per policy)
    LIST                   -> OK q1 q2 ...
    AUTH <token>           -> OK          (required first when the server asks for it)
    anything wrong         -> ERR <reason> (the connection stays usable)

Protocol jobs are ordinary jobs with the task ``raw`` and the payload as their one
argument, so the console, API and CLI show them like any other. A DEQUEUE claims
one through the lifecycle with a lease; ACK and NACK are the lifecycle's finish. A job
not acked before its lease runs out is recovered like the job of a lost worker
(failed as WorkerLost, retried after a back-off), so a client that dies holding a
job loses nothing. A lease belongs to the connection that dequeued the job.

When the server requires AUTH, each verb needs the permission ``queues.rules`` names
for it (LIST reads; ENQUEUE enqueues; DEQUEUE, ACK and NACK work jobs; CREATE of a new
queue adds one), checked against the token and its owner as they are now: a token
revoked, narrowed or whose owner lost a right stops working at its next command (its
state is re-read at most ``ACCESS_TTL`` seconds apart). Without AUTH (the loopback
default) every verb is open, as before.

A job whose payload is stored encrypted (``queues.encryption``) is dequeued in the clear
only by a connection that may see payloads (an open server's, or one whose token's owner
has ``queues.view_payloads``); others get ``ERR`` for a queue that encrypts, and
``JOB <id> 🔒 encrypted`` for a stray encrypted job on another queue. A payload the
server's keys cannot open fails its job for good (``PayloadKeyError``) with an ``ERR``.

Limits: a connection that has not authenticated within ``auth_timeout`` seconds, or
that sends nothing for ``idle_timeout`` seconds, gets one ``ERR`` line and is closed;
a connection beyond ``max_connections`` gets one ``ERR`` line and is closed at once.

The asyncio loop only reads and writes sockets; every database call runs in a small
thread pool, so a slow query never stalls other clients.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django import db
from django.utils import timezone

from . import auth_tokens, encryption, lifecycle, rules, storable, values
from .conf import conf
from .exceptions import InvalidJob, InvalidQueue, Nack, QueueConflict, error_path
from .models import ApiToken, Job, Queue
from .runner.duties import ClusterDuties
from .states import Outcome

logger = logging.getLogger("queues.protocol")
_session_ids = itertools.count(1)
VERBS = "CREATE ENQUEUE DEQUEUE ACK NACK LIST AUTH"
T = TypeVar("T")
ACCESS_TTL = 1.0
"""Seconds a connection trusts what it last read about its token and the token's owner."""


class ProtocolError(Exception):
    """A command the server refuses; the message becomes ``ERR <message>``."""


@dataclass
class Session:
    """One client connection: who it acts for, its identity as a lease holder, the jobs it holds.

    With ``open`` (no AUTH required) every verb is allowed; otherwise the connection acts
    with ``token`` (None until AUTH succeeds), re-read when older than ``ACCESS_TTL``."""

    open: bool
    token: ApiToken | None = None
    token_read_at: float = 0.0
    id: str = field(default_factory=lambda: f"tcp-{socket.gethostname()}-{os.getpid()}-{next(_session_ids)}")
    leased: dict[int, tuple[values.ClaimedJob, datetime]] = field(default_factory=dict)

    @property
    def authenticated(self) -> bool:
        return self.open or self.token is not None


class Commands:
    """Runs one command line against the database and returns the reply line."""

    def __init__(self, lease: float) -> None:
        self.lease = timedelta(seconds=lease)

    def handle(self, session: Session, line: str) -> str:
        db.close_old_connections()
        try:
            return self._dispatch(session, line)
        except ProtocolError as exc:
            return f"ERR {exc}"
        except (InvalidJob, InvalidQueue) as exc:
            return f"ERR {exc}"
        finally:
            db.close_old_connections()

    def _dispatch(self, session: Session, line: str) -> str:
        try:
            storable.check_text(line)
        except storable.Unstorable as exc:
            raise ProtocolError(str(exc)) from None
        verb, _, rest = line.partition(" ")
        verb = verb.upper()
        if not verb:
            raise ProtocolError(f"empty line; commands are {VERBS}")
        if verb == "AUTH":
            return self.auth(session, rest)
        if not session.authenticated:
            raise ProtocolError("authentication required: send AUTH <token> first")
        handler, action = {
            "CREATE": (self.create, rules.READ),  # adding a queue is checked in create
            "ENQUEUE": (self.enqueue, "job.enqueue"),
            "DEQUEUE": (self.dequeue, "job.work"),
            "ACK": (self.ack, "job.work"),
            "NACK": (self.nack, "job.work"),
            "LIST": (self.list, rules.READ),
        }.get(verb, (None, ""))
        if handler is None:
            raise ProtocolError(f"unknown command {verb!r}; commands are {VERBS}")
        self._authorize(session, action)
        return handler(session, rest)

    def auth(self, session: Session, rest: str) -> str:
        token = auth_tokens.authenticate(rest.strip())
        if token is None:
            raise ProtocolError("invalid or revoked token")
        session.token, session.token_read_at = token, time.monotonic()
        return "OK"

    def _authorize(self, session: Session, action: str) -> None:
        """Refuse ``action`` unless the connection's token (as it is now) may do it."""
        if session.open:
            return
        assert session.token is not None
        if time.monotonic() - session.token_read_at > ACCESS_TTL:
            session.token, session.token_read_at = auth_tokens.live(session.token.pk), time.monotonic()
            if session.token is None:
                raise ProtocolError("the token was revoked or its owner deactivated; send AUTH <token>")
        if reason := rules.token_refusal(session.token, action):
            raise ProtocolError(reason)

    def create(self, session: Session, rest: str) -> str:
        name = _one_word(rest, "CREATE <queue>")
        if Queue.objects.filter(name=name).exists():
            return "OK"  # declaring a queue that exists changes nothing, so reading suffices
        self._authorize(session, "queue.add")
        try:
            lifecycle.create_queue(name)
        except QueueConflict:
            pass  # CREATE is idempotent: producers and consumers may both declare the queue
        return "OK"

    def enqueue(self, session: Session, rest: str) -> str:
        name, _, payload = rest.partition(" ")
        if not name or not payload:
            raise ProtocolError("usage: ENQUEUE <queue> <payload text>")
        job, _ = lifecycle.enqueue(values.JobSpec(task_path=Job.RAW_TASK, args=[payload], queue=name))
        return f"OK {job.pk}"

    def dequeue(self, session: Session, rest: str) -> str:
        name = _one_word(rest, "DEQUEUE <queue>")
        queue = lifecycle.get_queue(name)  # an unknown queue is an error, not EMPTY forever
        reveal = session.open or rules.sees_payloads(session.token)
        if not reveal and (queue.encrypt or conf.QUEUES_ENCRYPT_ALL):
            raise ProtocolError(
                f"queue {name} stores encrypted payloads; taking its jobs needs the "
                f"{rules.RULES['payload.view'].permission} permission"
            )
        claimed = lifecycle.claim(session.id, [name], 1, raw=True, lease=self.lease)
        if not claimed:
            return "EMPTY"
        job = claimed[0]
        session.leased[job.id] = (job, timezone.now())
        return f"JOB {job.id} {self._payload(session, job, reveal)}"

    def _payload(self, session: Session, job: values.ClaimedJob, reveal: bool) -> str:
        """The job's payload text; an encrypted one opened for a connection that may see it."""
        if not encryption.sealed_arguments(job.args, job.kwargs):
            return job.args[0] if job.args else ""
        if not reveal:
            return encryption.HIDDEN
        try:
            args, _ = encryption.open_arguments(job.args, job.kwargs)
        except encryption.PayloadKeyError as exc:
            _, started_at = session.leased[job.id]
            failed = values.Finished(
                job,
                Outcome.FAILED,
                started_at,
                timezone.now(),
                error_type=error_path(encryption.PayloadKeyError),
                error_message=str(exc),
                retryable=False,
            )
            self._finish(session, failed)
            raise ProtocolError(f"job {job.id} cannot be decrypted ({exc}); it failed for good") from None
        return args[0]

    def ack(self, session: Session, rest: str) -> str:
        job, started_at = self._leased(session, rest.strip(), "ACK <id>")
        self._finish(session, values.Finished(job, Outcome.SUCCEEDED, started_at, timezone.now()))
        return "OK"

    def nack(self, session: Session, rest: str) -> str:
        job_id, _, reason = rest.strip().partition(" ")
        job, started_at = self._leased(session, job_id, "NACK <id> [reason]")
        failed = values.Finished(
            job,
            Outcome.FAILED,
            started_at,
            timezone.now(),
            error_type=error_path(Nack),
            error_message=encryption.sealed_like(
                job.args, job.kwargs, reason.strip() or "the client gave the job back"
            ),
        )
        self._finish(session, failed)
        return "OK"

    def list(self, session: Session, rest: str) -> str:
        if rest.strip():
            raise ProtocolError("usage: LIST")
        return " ".join(["OK", *Queue.objects.values_list("name", flat=True)])

    def _leased(self, session: Session, job_id: str, usage: str) -> tuple[values.ClaimedJob, datetime]:
        if not job_id.isdigit() or len(job_id) > 18:
            raise ProtocolError(f"usage: {usage}")
        lease = session.leased.get(int(job_id))
        if lease is None:
            raise ProtocolError(f"job {job_id} is not leased to this connection")
        return lease

    def _finish(self, session: Session, finished: values.Finished) -> None:
        session.leased.pop(finished.job.id, None)
        if finished.job.id not in lifecycle.finish(session.id, [finished]):
            raise ProtocolError(f"job {finished.job.id}'s lease expired; it was given back to the queue")


def _one_word(rest: str, usage: str) -> str:
    words = rest.split()
    if len(words) != 1:
        raise ProtocolError(f"usage: {usage}")
    return words[0]


class LineTooLong(Exception):
    pass


async def read_line(reader: asyncio.StreamReader) -> bytes | None:
    """The next line without its end; None at end of stream; LineTooLong after the
    rest of an oversize line has been read and thrown away (so the next line is clean)."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        return exc.partial or None  # a last line without a newline still counts
    except asyncio.LimitOverrunError as exc:
        await reader.readexactly(exc.consumed)
        while True:
            try:
                await reader.readuntil(b"\n")
                break
            except asyncio.LimitOverrunError as more:
                await reader.readexactly(more.consumed)
            except asyncio.IncompleteReadError:
                break
        raise LineTooLong from None
    return line.rstrip(b"\r\n")


@dataclass(frozen=True)
class Limits:
    """How long and how many: what keeps idle or unauthenticated clients from piling up."""

    auth_timeout: float
    """Seconds a connection has to succeed with AUTH, when the server requires it."""
    idle_timeout: float
    """Seconds a connection may send nothing."""
    max_connections: int
    """Connections served at once; the next one is told so and closed."""


class Server:
    """The asyncio TCP server of ``manage.py runbroker``."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        require_auth: bool,
        lease: float,
        max_line: int,
        limits: Limits,
        threads: int = 8,
    ) -> None:
        self.host, self.port = host, port
        self.require_auth = require_auth
        self.max_line = max_line
        self.limits = limits
        self.connections = 0
        self.commands = Commands(lease)
        self.lease = lease
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="runbroker-db")

    async def serve(self) -> None:
        server = await asyncio.start_server(self._client, self.host, self.port, limit=self.max_line + 2)
        # The bound address, not the asked one: with --port 0 the kernel picks the port, and
        # whoever started us (a test, a supervisor) learns it from this line.
        bound = ", ".join(_address(sock.getsockname()) for sock in server.sockets)
        logger.info(
            "runbroker listening on %s (pid %d, auth %s, lease %.0fs, idle %gs, at most %d connections)",
            bound,
            os.getpid(),
            f"required within {self.limits.auth_timeout:g}s" if self.require_auth else "off",
            self.lease,
            self.limits.idle_timeout,
            self.limits.max_connections,
        )
        async with server:
            maintenance = asyncio.create_task(self._maintain())
            try:
                await server.serve_forever()
            finally:
                maintenance.cancel()
                self.executor.shutdown(wait=False, cancel_futures=True)

    async def _db(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, func, *args)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if self.connections >= self.limits.max_connections:
            logger.warning("refused %s: already %d connections", peer, self.connections)
            await _last_word(writer, f"ERR too many connections (at most {self.limits.max_connections})")
            return
        self.connections += 1
        session = Session(open=not self.require_auth)
        auth_deadline: float | None = None
        logger.debug("client %s connected as %s", peer, session.id)
        try:
            while True:
                # The AUTH clock starts at connect, and again when a revoked token is dropped.
                if session.authenticated:
                    auth_deadline = None
                elif auth_deadline is None:
                    auth_deadline = time.monotonic() + self.limits.auth_timeout
                timeout, why = self._wait(auth_deadline)
                try:
                    raw = await asyncio.wait_for(read_line(reader), timeout)
                except LineTooLong:
                    reply = f"ERR line longer than {self.max_line} bytes"
                except TimeoutError:
                    await _last_word(writer, f"ERR {why}; closing the connection")
                    break
                else:
                    if raw is None:
                        break
                    reply = await self._reply(session, raw)
                writer.write(reply.encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.connections -= 1
            writer.close()
            logger.debug("client %s left holding %d leased jobs", peer, len(session.leased))

    def _wait(self, auth_deadline: float | None) -> tuple[float, str]:
        """How long to wait for the next line, and what to say if none comes."""
        idle = self.limits.idle_timeout
        if auth_deadline is not None and auth_deadline - time.monotonic() < idle:
            left = max(auth_deadline - time.monotonic(), 0.0)
            return left, f"no AUTH within {self.limits.auth_timeout:g}s"
        return idle, f"idle for {idle:g}s"

    async def _reply(self, session: Session, raw: bytes) -> str:
        try:
            line = raw.decode()
        except UnicodeDecodeError:
            return "ERR the line is not valid UTF-8"
        try:
            return await self._db(self.commands.handle, session, line)
        except db.Error as exc:
            logger.error("database error on %r: %s", line[:100], exc)
            return "ERR the database is unavailable; try again"
        except Exception:
            # A bug must cost one reply, not the connection and the jobs it holds.
            logger.exception("internal error on %r", line[:100])
            return "ERR internal error; see the runbroker log"

    async def _maintain(self) -> None:
        """Give expired leases back and move due scheduled jobs on, even with no runworker
        (the cluster duties runworker runs too, minus cron and pruning)."""
        duties = ClusterDuties(
            f"runbroker-{socket.gethostname()}-{os.getpid()}",
            cron_and_prune=False,
            recover_every=max(min(self.lease / 2, 1.0), 0.1),
        )
        while True:
            await asyncio.sleep(max(duties.next_due() - time.monotonic(), 0.0))
            try:
                await self._db(_run_duties, duties)
            except db.Error as exc:
                logger.error("lease recovery failed: %s", exc)


def _address(sockname: tuple) -> str:
    host, port = sockname[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _last_word(writer: asyncio.StreamWriter, line: str) -> None:
    """Say why, then hang up."""
    try:
        writer.write(line.encode() + b"\n")
        await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


def _run_duties(duties: ClusterDuties) -> None:
    db.close_old_connections()
    try:
        duties.run_due(time.monotonic())
    finally:
        db.close_old_connections()
