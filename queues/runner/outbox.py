"""Outcomes written off the feeding path: a writer thread that batches them.

The loop hands each finished attempt to the outbox and goes straight back to feeding
idle children; the writer gathers what arrives within ``FLUSH_AFTER`` (or
``FLUSH_BATCH`` outcomes) and records it with one ``lifecycle.finish`` on its own
database connection. A database error keeps the batch and retries it after a pause:
nothing a child reported is dropped. ``close`` writes what is left and stops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from django import db

from .. import lifecycle, values
from ..states import Outcome

logger = logging.getLogger("queues.worker")
FLUSH_AFTER = 0.005  # seconds an outcome may wait to share a write with others
FLUSH_BATCH = 200  # ... or this many outcomes, whichever comes first
DB_ERRORS = (db.OperationalError, db.InterfaceError)

Writer = Callable[[str, Sequence[values.Finished]], set[int]]


class Outbox:
    def __init__(self, worker_id: str, write: Writer = lifecycle.finish, threaded: bool = True) -> None:
        self.worker_id = worker_id
        self._write = write
        self._items: list[values.Finished] = []
        self._cond = threading.Condition()
        self._closing = False
        self._writing = 0  # outcomes taken by the writer and not yet recorded
        self.done = 0  # applied successes and failures not yet reported by a heartbeat
        self.failed = 0
        self._wrote = False  # a batch was recorded since the last ``take_wrote``
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
            self._thread.start()

    def put(self, finished: values.Finished) -> None:
        with self._cond:
            self._items.append(finished)
            self._cond.notify()

    @property
    def pending(self) -> int:
        """Outcomes handed in and not yet written."""
        with self._cond:
            return len(self._items) + self._writing

    def take_counts(self) -> tuple[int, int]:
        """Successes and failures recorded since the last call (for the heartbeat)."""
        with self._cond:
            counts, self.done, self.failed = (self.done, self.failed), 0, 0
        return counts

    def take_wrote(self) -> bool:
        """Whether a batch was recorded since the last call (finishing may release workflow steps)."""
        with self._cond:
            wrote, self._wrote = self._wrote, False
        return wrote

    def flush(self) -> None:
        """Write everything handed in so far, here and now (no thread, or at shutdown)."""
        with self._cond:
            batch, self._items = self._items, []
        if batch:
            self._record(batch)

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
        self.flush()

    def _run(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._items and not self._closing:
                        self._cond.wait()
                    if not self._items and self._closing:
                        return
                    first_at = time.monotonic()
                    while len(self._items) < FLUSH_BATCH and not self._closing:
                        left = first_at + FLUSH_AFTER - time.monotonic()
                        if left <= 0:
                            break
                        self._cond.wait(left)
                    batch, self._items = self._items[:FLUSH_BATCH], self._items[FLUSH_BATCH:]
                    self._writing = len(batch)
                self._write_until_done(batch)
        finally:
            db.connections.close_all()

    def _write_until_done(self, batch: list[values.Finished]) -> None:
        pause = 0.5
        while True:
            try:
                self._record(batch)
                return
            except DB_ERRORS as exc:
                logger.error("could not record %d outcomes: %s; retrying in %.1fs", len(batch), exc, pause)
                db.connections.close_all()
                time.sleep(pause)
                pause = min(pause * 2, 10.0)

    def _record(self, batch: list[values.Finished]) -> None:
        applied = self._write(self.worker_id, batch)
        with self._cond:
            for item in batch:
                if item.job.id in applied:
                    if item.outcome == Outcome.SUCCEEDED:
                        self.done += 1
                    else:
                        self.failed += 1
            self._writing = 0
            self._wrote = True
