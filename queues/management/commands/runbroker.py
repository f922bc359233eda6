"""``manage.py runbroker``: serve the plain-text TCP protocol (see queues.protocol)."""

from __future__ import annotations

import asyncio
import ipaddress
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from queues import logs
from queues.conf import conf
from queues.protocol import Limits, Server


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _limits(options: dict[str, Any]) -> Limits:
    def pick(option: str, setting: str) -> Any:
        return options[option] if options[option] is not None else getattr(conf, setting)

    limits = Limits(
        auth_timeout=pick("auth_timeout", "QUEUES_PROTOCOL_AUTH_TIMEOUT"),
        idle_timeout=pick("idle_timeout", "QUEUES_PROTOCOL_IDLE_TIMEOUT"),
        max_connections=pick("max_connections", "QUEUES_PROTOCOL_MAX_CONNECTIONS"),
    )
    if limits.auth_timeout <= 0 or limits.idle_timeout <= 0 or limits.max_connections < 1:
        raise CommandError(
            "--auth-timeout and --idle-timeout must be more than 0 seconds and --max-connections at least 1."
        )
    return limits


class Command(BaseCommand):
    help = "Serve the TCP line protocol (CREATE, ENQUEUE, DEQUEUE, ACK, NACK, LIST, AUTH)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1).")
        parser.add_argument(
            "--port", type=int, default=7070, help="Port (default 7070; 0 picks a free one and logs it)."
        )
        auth = parser.add_mutually_exclusive_group()
        auth.add_argument(
            "--auth",
            dest="auth",
            action="store_true",
            default=None,
            help="Require AUTH <token> first (the default on any non-loopback address).",
        )
        auth.add_argument(
            "--no-auth", dest="auth", action="store_false", help="Accept clients without a token."
        )
        parser.add_argument(
            "--lease",
            type=float,
            default=None,
            help=f"Seconds a client holds a dequeued job before it is redelivered "
            f"(default {conf.QUEUES_PROTOCOL_LEASE:g}).",
        )
        parser.add_argument(
            "--max-line",
            type=int,
            default=None,
            help=f"Longest accepted line in bytes (default {conf.QUEUES_PROTOCOL_MAX_LINE}).",
        )
        parser.add_argument(
            "--auth-timeout",
            type=float,
            default=None,
            help=f"Seconds a client has to send a valid AUTH when it is required, then it is "
            f"disconnected (default {conf.QUEUES_PROTOCOL_AUTH_TIMEOUT:g}).",
        )
        parser.add_argument(
            "--idle-timeout",
            type=float,
            default=None,
            help=f"Seconds a client may send nothing before it is disconnected "
            f"(default {conf.QUEUES_PROTOCOL_IDLE_TIMEOUT:g}).",
        )
        parser.add_argument(
            "--max-connections",
            type=int,
            default=None,
            help=f"Connections served at once; one more is refused with ERR "
            f"(default {conf.QUEUES_PROTOCOL_MAX_CONNECTIONS}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        logs.show_command_logs(options["verbosity"])
        host, port = options["host"], options["port"]
        lease = options["lease"] if options["lease"] is not None else conf.QUEUES_PROTOCOL_LEASE
        max_line = options["max_line"] if options["max_line"] is not None else conf.QUEUES_PROTOCOL_MAX_LINE
        if not 0 <= port < 65536:
            raise CommandError(f"--port must be 0..65535, not {port}.")
        if lease <= 0 or max_line < 64:
            raise CommandError("--lease must be more than 0 seconds and --max-line at least 64 bytes.")
        require_auth = options["auth"] if options["auth"] is not None else not _is_loopback(host)
        server = Server(
            host, port, require_auth=require_auth, lease=lease, max_line=max_line, limits=_limits(options)
        )
        try:
            asyncio.run(self._run(server))
        except OSError as exc:
            raise CommandError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    async def _run(self, server: Server) -> None:
        serving = asyncio.create_task(server.serve())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, serving.cancel)
        try:
            await serving
        except asyncio.CancelledError:
            self.stdout.write("runbroker stopped")
