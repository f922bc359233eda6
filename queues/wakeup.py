"""Wakes an idle worker the moment jobs arrive, via PostgreSQL LISTEN/NOTIFY.

The listener owns a dedicated autocommit connection (Django's own may be closed
under it by connection-age handling). Any failure closes it and the worker falls
back to polling until the next reconnect attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from django.db import connection

from .engines.postgresql import NOTIFY_CHANNEL

logger = logging.getLogger("queues.worker")


class Listener:
    def __init__(self, queue_names: Sequence[str] | None) -> None:
        self.queue_names = set(queue_names) if queue_names else None
        self.conn = None

    def connect(self) -> bool:
        import psycopg

        self.close()
        try:
            self.conn = psycopg.connect(**connection.get_connection_params(), autocommit=True)
            self.conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except psycopg.Error as exc:
            logger.warning("LISTEN failed, polling instead: %s", exc)
            self.close()
        return self.conn is not None

    def fileno(self) -> int | None:
        return self.conn.fileno() if self.conn is not None else None

    def drain(self) -> bool:
        """Consume waiting notifications; True if one was for a queue this worker serves."""
        import psycopg

        if self.conn is None:
            return False
        try:
            names = {notify.payload for notify in self.conn.notifies(timeout=0)}
        except psycopg.Error as exc:
            logger.warning("LISTEN connection lost, polling until it is back: %s", exc)
            self.close()
            return True
        return bool(names) and (self.queue_names is None or bool(names & self.queue_names))

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None
