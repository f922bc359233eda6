"""The children that run jobs, one job each at a time; the loop sends a job only to an idle one.

``ProcessPool`` forks real children (a job past its timeout, or cancelled, is stopped
by killing its child and starting a new one): the default, because only a process can
be stopped from outside. ``ThreadPool`` (``runworker --pool threads``) runs each slot
as a thread of the worker: far cheaper in memory for many slots of jobs that wait on
I/O, but a thread cannot be killed, so a job past its timeout or cancelled is only
abandoned (recorded as such; its code runs on until it returns, its report dropped)
and a fresh thread takes its slot. ``InProcessPool`` runs each job in the worker's own
loop the moment it is sent (RQ's ``SimpleWorker`` idea): the loop is the same, which is
what unit tests of the loop use; nothing can stop such a job. All speak through a pipe
per slot, so the loop waits on them alike.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import threading
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any, Protocol

from django import db

from .. import values
from .child import Assignment, Report, child_main, run, serve


@dataclass
class Slot:
    """One child and the one job it runs, if any."""

    conn: Connection
    process: Any = None  # the child process (a thread, for a ThreadPool)
    job: values.ClaimedJob | None = None
    started_at: datetime | None = None  # of the running job
    deadline: float = math.inf  # monotonic time its timeout runs out


class Pool(Protocol):
    slots: list[Slot]
    stopped: str
    """How a job cut short by ``kill`` ended, for its attempt's error message."""

    def add(self) -> Slot: ...

    def send(self, slot: Slot, assignment: Assignment) -> None: ...

    def kill(self, slot: Slot) -> Report | None:
        """Stop the child now; the report it sent before dying, if any."""

    def renew(self, slot: Slot) -> None:
        """Give the slot a fresh child (after a kill or a death)."""

    def stop(self, slot: Slot) -> None:
        """Stop an idle child for good."""


class ProcessPool:
    """Forked children, each running ``child.child_main``."""

    stopped = "was stopped"

    def __init__(self) -> None:
        self.slots: list[Slot] = []
        self._ctx = multiprocessing.get_context("fork")

    def add(self) -> Slot:
        slot = Slot(*self._spawn())
        self.slots.append(slot)
        return slot

    def _spawn(self) -> tuple[Connection, Any]:
        # A forked child must not share the parent's database sockets.
        db.connections.close_all()
        parent_conn, child_conn = self._ctx.Pipe()
        process = self._ctx.Process(target=child_main, args=(child_conn,), daemon=True)
        process.start()
        child_conn.close()
        return parent_conn, process

    def send(self, slot: Slot, assignment: Assignment) -> None:
        slot.conn.send(assignment)

    def kill(self, slot: Slot) -> Report | None:
        if slot.process.is_alive():
            os.kill(slot.process.pid, signal.SIGKILL)
        slot.process.join(5)
        return self._hang_up(slot)

    def _hang_up(self, slot: Slot) -> Report | None:
        """Close the slot's pipe; the report its job sent just before, if any."""
        report = None
        try:
            if slot.job is not None and slot.conn.poll():
                report = slot.conn.recv()
        except (EOFError, OSError):
            pass
        slot.conn.close()
        return report

    def renew(self, slot: Slot) -> None:
        slot.conn, slot.process = self._spawn()
        slot.job, slot.started_at, slot.deadline = None, None, math.inf

    def stop(self, slot: Slot) -> None:
        if slot.process.is_alive():
            try:
                slot.conn.send(None)
            except OSError:
                pass
            slot.process.join(5)
            if slot.process.is_alive():
                self.kill(slot)
        slot.conn.close()
        if slot in self.slots:
            self.slots.remove(slot)

    def exit_code(self, slot: Slot) -> int | None:
        return slot.process.exitcode


class ThreadPool(ProcessPool):
    """Threads of this process, each running ``child.serve``; ``kill`` abandons a thread."""

    stopped = "was abandoned: a thread cannot be stopped, its code runs on until it returns"

    def _spawn(self) -> tuple[Connection, Any]:
        ours, theirs = multiprocessing.Pipe()
        thread = threading.Thread(target=serve, args=(theirs,), name="job", daemon=True)
        thread.start()
        return ours, thread

    def kill(self, slot: Slot) -> Report | None:
        """Hang up on the thread: it ends once its job returns, its report refused."""
        return self._hang_up(slot)

    def exit_code(self, slot: Slot) -> int | None:
        return None


class InProcessPool:
    """Runs each job here, synchronously, as it is sent; its report waits in the slot's pipe."""

    stopped = "was stopped"

    def __init__(self) -> None:
        self.slots: list[Slot] = []
        self._ends: dict[int, Connection] = {}

    def add(self) -> Slot:
        slot = Slot(self._pipe())
        self.slots.append(slot)
        return slot

    def _pipe(self) -> Connection:
        ours, theirs = multiprocessing.Pipe()
        self._ends[id(ours)] = theirs
        return ours

    def send(self, slot: Slot, assignment: Assignment) -> None:
        self._ends[id(slot.conn)].send(run(assignment))

    def kill(self, slot: Slot) -> Report | None:
        report = slot.conn.recv() if slot.conn.poll() else None
        self._close(slot)
        return report

    def renew(self, slot: Slot) -> None:
        slot.conn = self._pipe()
        slot.job, slot.started_at, slot.deadline = None, None, math.inf

    def stop(self, slot: Slot) -> None:
        self._close(slot)
        if slot in self.slots:
            self.slots.remove(slot)

    def _close(self, slot: Slot) -> None:
        self._ends.pop(id(slot.conn)).close()
        slot.conn.close()

    def exit_code(self, slot: Slot) -> int | None:
        return None
