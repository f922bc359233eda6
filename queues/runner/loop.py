"""The runworker loop: claim jobs, hand each to an idle child, pass outcomes to the outbox.

One parent process talks to the database; each of its children (``pool``) runs one
job at a time. Round trips are what cost, so the parent claims in batches: claimed
jobs wait here as ``reserved`` (leased, not started), as many as the pacer
(``pacing``) finds worth holding. A job goes only to an idle child, and is marked
running (``lifecycle.start``) as it goes: no job ever waits behind another in a busy
child's pipe, and its ``started_at`` and timeout count from there. Outcomes are
written by the outbox's thread, so the loop keeps feeding children while the
database works. Cluster duties (``duties``) run on their own clocks.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import wait
from typing import Any

from django import db
from django.utils import timezone

from .. import lifecycle, logs, offload, quarantine, scheduler, values
from ..autoscale import Autoscaler
from ..conf import conf
from ..exceptions import WorkerChildDied, WorkerShutdown, error_path
from ..models import Worker as WorkerRow
from ..states import Outcome
from ..wakeup import Listener
from .child import Assignment, Report
from .duties import ClusterDuties
from .outbox import FLUSH_AFTER, Outbox
from .pacing import Pacer
from .pool import InProcessPool, Pool, ProcessPool, Slot, ThreadPool

logger = logging.getLogger("queues.worker")
DB_ERRORS = (db.OperationalError, db.InterfaceError)


@dataclass
class Worker:
    queues: list[str] | None
    concurrency: int
    prefetch: int | None = None  # claimed jobs that may wait here for a child; None: adaptive
    autoscale: Autoscaler | None = None  # grow and shrink the children between MIN and MAX
    burst: bool = False  # exit once no job is left to claim
    listen: bool = True
    in_process: bool = False  # run jobs in this process (tests of the loop): no timeouts
    threads: bool = False  # run jobs in threads of this process (``--pool threads``)
    grace: float = field(default_factory=lambda: float(conf.QUEUES_SHUTDOWN_GRACE))
    id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}")

    def __post_init__(self) -> None:
        self.pool: Pool = ProcessPool()
        if self.in_process or self.threads:
            self.pool = InProcessPool() if self.in_process else ThreadPool()
        self.pacer = Pacer(self.concurrency, fixed=self.prefetch)
        self.duties = ClusterDuties(self.id)
        self.outbox: Outbox | None = None
        self.backlog: deque[values.ClaimedJob] = deque()
        self.withdrawn: list[int] = []  # never started here: back to the queue
        self.listener: Listener | None = None
        self.janitor: offload.Janitor | None = None
        self.stop_at: float | None = None  # monotonic deadline once shutdown began
        self.force = False
        self.more_waiting = True
        self.poll_delay = conf.QUEUES_POLL_MIN
        self.next_poll = 0.0
        self.next_heartbeat = 0.0
        self.db_backoff = 0.0

    @property
    def slots(self) -> list[Slot]:
        return self.pool.slots

    # --- lifecycle -----------------------------------------------------------------

    def run(self) -> None:
        signal_r, signal_w = os.pipe()
        os.set_blocking(signal_r, False)
        os.set_blocking(signal_w, False)
        if not self.in_process:
            self._install_signal_handlers(signal_w)
        logs.set_process_context(worker=self.id)
        lifecycle.register_worker(
            WorkerRow(
                id=self.id,
                hostname=socket.gethostname(),
                pid=os.getpid(),
                queues=self.queues or [],
                concurrency=self.concurrency,
            )
        )
        logger.info(
            "worker %s started: queues=%s concurrency=%d",
            self.id,
            ",".join(self.queues) if self.queues else "*",
            self.concurrency,
        )
        for _ in range(self.concurrency):
            self.pool.add()
        # After the children are forked: a thread must not be running while the process forks.
        self.outbox = Outbox(self.id)
        self.janitor = offload.Janitor(conf.QUEUES_PRUNE_INTERVAL)  # stored payloads no job holds
        self.janitor.start()
        if self.listen and conf.QUEUES_LISTEN and db.connection.vendor == "postgresql":
            self.listener = Listener(self.queues)
            self.listener.connect()
        try:
            self._loop(signal_r)
        finally:
            self._shutdown()
            os.close(signal_r)
            os.close(signal_w)

    def _install_signal_handlers(self, wakeup_fd: int) -> None:
        def request_stop(signum: int, frame: Any) -> None:
            if self.stop_at is None:
                logger.info("worker %s stopping: finishing running jobs (grace %.0fs)", self.id, self.grace)
                self.stop_at = time.monotonic() + self.grace
            else:
                logger.info("worker %s stopping now", self.id)
                self.force = True

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
        signal.set_wakeup_fd(wakeup_fd)

    def _loop(self, signal_fd: int) -> None:
        assert self.outbox is not None
        while not self.force:
            now = time.monotonic()
            if self.stop_at is not None and (not self.busy_slots() or now >= self.stop_at):
                break
            try:
                self._maintain(now)
                if self.stop_at is None:
                    self._claim(now)
                else:
                    self._withdraw_waiting()
                if self.withdrawn:
                    lifecycle.release(self.id, self.withdrawn)
                    self.withdrawn = []
                self._dispatch()
            except DB_ERRORS as exc:
                self._back_off(f"database error: {exc}")
                continue
            except quarantine.DECODE_ERRORS as exc:
                # A row nothing could read that no sweep could mend (queues.quarantine):
                # say so loudly, and keep serving every other job.
                logger.exception("worker %s could not read a row", self.id)
                self._back_off(f"unreadable row: {exc}")
                continue
            self.db_backoff = 0.0
            self._autoscale(now)
            if self.burst and not self._has_work():
                break
            ready = wait(self._waitables(signal_fd), self._wait_timeout())
            for item in ready:
                if item == signal_fd:
                    _drain_fd(signal_fd)
                elif self.listener is not None and item == self.listener.fileno():
                    if self.listener.drain():
                        self.more_waiting = True
            self._collect()
            self._enforce_timeouts()

    def _shutdown(self) -> None:
        for slot in self.busy_slots():
            self._kill(slot)
        unfinished = [slot for slot in self.slots if slot.job is not None]
        cut_at = timezone.now()
        # Attempts stopped mid-run are recorded, so a second run of their job is explained.
        cut = [
            values.Finished(
                job=slot.job,
                outcome=Outcome.LOST,
                started_at=slot.started_at or cut_at,
                finished_at=cut_at,
                error_type=error_path(WorkerShutdown),
                error_message=f"stopped by the worker's shutdown after {self.grace:g}s of grace; "
                "back in its queue, not counted against max_attempts",
            )
            for slot in unfinished
            if slot.job is not None
        ]
        for slot in list(self.slots):
            self.pool.stop(slot)
        try:
            if self.outbox is not None:
                self.outbox.close()
            waiting = [job.id for job in self.backlog] + self.withdrawn
            returned = len(lifecycle.requeue_cut(self.id, cut))
            if waiting:
                returned += lifecycle.release(self.id, waiting)
            if returned:
                logger.warning("worker %s returned %d unfinished jobs to their queues", self.id, returned)
            lifecycle.count_work(self.id, *self._take_counts())
            done, failed = lifecycle.stop_worker(self.id)
            scheduler.release_lease(self.id)
        except DB_ERRORS as exc:
            logger.error("worker %s could not record its shutdown: %s", self.id, exc)
            done = failed = None
        if self.listener is not None:
            self.listener.close()
        if self.janitor is not None:
            self.janitor.stop()
        totals = "" if done is None else f": {done} jobs done, {failed} failed"
        logger.info("worker %s stopped%s", self.id, totals)

    # --- claiming and dispatch -----------------------------------------------------

    def busy_slots(self) -> list[Slot]:
        return [slot for slot in self.slots if slot.job is not None]

    def idle_slots(self) -> list[Slot]:
        return [slot for slot in self.slots if slot.job is None]

    def _room(self) -> int:
        return self.pacer.room(len(self.idle_slots()), len(self.backlog))

    def _claim(self, now: float) -> None:
        """Top up the backlog for the idle children and the pacer's target, in one statement."""
        free = self._room()
        if not free or not (self.more_waiting or now >= self.next_poll):
            return
        began = time.monotonic()
        jobs = lifecycle.claim(self.id, self.queues, free)
        self.pacer.claimed(time.monotonic() - began)
        self.more_waiting = len(jobs) == free
        if jobs:
            self.poll_delay = conf.QUEUES_POLL_MIN
        elif self.listener is not None and self.listener.fileno() is not None:
            self.poll_delay = conf.QUEUES_POLL_INTERVAL
        else:
            self.poll_delay = min(self.poll_delay * 2, conf.QUEUES_POLL_MAX)
        self.next_poll = now + self.poll_delay
        self.backlog.extend(jobs)
        if jobs:
            logger.debug("worker %s claimed %d jobs", self.id, len(jobs))

    def _autoscale(self, now: float) -> None:
        if self.autoscale is None or self.stop_at is not None:
            return
        busy = len(self.busy_slots())
        change = self.autoscale.decide(now, len(self.slots), busy, bool(self.backlog) or self.more_waiting)
        if change > 0:
            self.pool.add()
        elif change < 0:
            self.pool.stop(self.idle_slots()[0])
        if change:
            self.concurrency = self.pacer.concurrency = len(self.slots)
            lifecycle.set_concurrency(self.id, self.concurrency)
            logger.info("autoscale: %d children (%d busy)", self.concurrency, busy)

    def _dispatch(self) -> None:
        """Hand backlog jobs to idle children only, marking them running in one write.

        A job the write does not start is dropped unstarted: cancelled or recovered while
        it waited, or its task's circuit opened since the claim (then it goes back to its
        queue, its claim not counted, for when the circuit lets it through).
        """
        idle = self.idle_slots()
        if not idle or not self.backlog:
            return
        jobs = [self.backlog.popleft() for _ in range(min(len(idle), len(self.backlog)))]
        at = timezone.now()
        try:
            started = lifecycle.start(self.id, [job.id for job in jobs], at)
        except BaseException:
            self.backlog.extendleft(reversed(jobs))  # still reserved: the next round tries again
            raise
        for job in jobs:
            if job.id in started:
                self._send(idle.pop(0), job, at)
            else:
                logger.info(
                    "job %s not started: cancelled, recovered, or its task's circuit is open",
                    job.id,
                    extra=logs.job_fields(job, self.id),
                )
        if len(started) < len(jobs):
            lifecycle.release(self.id, [job.id for job in jobs if job.id not in started])

    def _has_work(self) -> bool:
        assert self.outbox is not None
        if self.outbox.pending:
            return True
        if self.outbox.take_wrote():
            # Finishing may have released workflow steps: a burst worker looks once more
            # before it decides nothing is left (others are woken by the notification).
            self.more_waiting = True
        return bool(self.busy_slots() or self.backlog or self.more_waiting)

    def _withdraw_waiting(self) -> None:
        """On shutdown, reserved jobs not started yet go back to the queue at once."""
        self.withdrawn += [job.id for job in self.backlog]
        self.backlog.clear()

    def _send(self, slot: Slot, job: values.ClaimedJob, at: datetime) -> None:
        """Give an idle child its job; the timeout clock starts now, with the job's code."""
        slot.job, slot.started_at, slot.deadline = job, at, time.monotonic() + job.timeout
        self.pool.send(
            slot,
            Assignment(job, self.id),
        )

    def _waitables(self, signal_fd: int) -> list[Any]:
        items: list[Any] = [signal_fd, *(slot.conn for slot in self.busy_slots())]
        if self.listener is not None and self.listener.fileno() is not None:
            items.append(self.listener.fileno())
        return items

    def _wait_timeout(self) -> float:
        now = time.monotonic()
        moments = [self.next_heartbeat, self.duties.next_due()]
        if self.stop_at is not None:
            moments.append(self.stop_at)
        elif self._room():
            moments.append(now if self.more_waiting else self.next_poll)
        if self.backlog and self.idle_slots():
            moments.append(now)
        if self.burst and self.outbox is not None and self.outbox.pending:
            moments.append(now + FLUSH_AFTER)  # look again once the writer is done
        moments.extend(slot.deadline for slot in self.busy_slots())
        return max(0.0, min(moments) - now)

    def _collect(self) -> None:
        """Take every report the children have ready."""
        finished_at = timezone.now()
        for slot in self.busy_slots():
            try:
                if slot.conn.poll():
                    self._record(slot, finished_at, slot.conn.recv())
            except (EOFError, OSError):
                self._child_died(slot)

    def _record(self, slot: Slot, finished_at: datetime, report: Report) -> None:
        job = slot.job
        assert job is not None and slot.started_at is not None and self.outbox is not None
        if report.job_id != job.id:  # a child runs one job at a time; be loud if not
            raise RuntimeError(f"child reported job {report.job_id} while running {job.id}")
        finished = attempt_outcome(job, report, slot.started_at, finished_at)
        self.outbox.put(finished)
        self.pacer.finished(finished.duration)
        slot.job, slot.started_at, slot.deadline = None, None, float("inf")
        if report.ok and logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "job %s %s attempt %d succeeded",
                job.id,
                job.task_path,
                job.attempt,
                extra=logs.job_fields(job, self.id),
            )
        elif not report.ok:
            logger.warning(
                "job %s %s attempt %d failed: %s: %s",
                job.id,
                job.task_path,
                job.attempt,
                report.error_type,
                report.error_message,
                extra=logs.job_fields(job, self.id),
            )

    # --- stopping jobs -------------------------------------------------------------

    def _enforce_timeouts(self) -> None:
        now = time.monotonic()
        for slot in self.busy_slots():
            if now >= slot.deadline and slot.job is not None:
                self._kill(slot)
                if slot.job is not None:
                    message = f"attempt ran past its timeout of {slot.job.timeout}s and {self.pool.stopped}"
                    self._fail_slot(slot, error_path(TimeoutError), message, Outcome.TIMEOUT)
                else:  # it finished just in time
                    self.pool.renew(slot)

    def _child_died(self, slot: Slot) -> None:
        code = self.pool.exit_code(slot)
        self._kill(slot)
        if slot.job is None:
            self.pool.renew(slot)
            return
        message = f"the process running the job exited (code {code})"
        self._fail_slot(slot, error_path(WorkerChildDied), message, Outcome.FAILED)

    def _fail_slot(self, slot: Slot, error_type: str, message: str, outcome: Outcome) -> None:
        """The running job failed with its child: record it, and start a fresh child."""
        job = slot.job
        assert job is not None and slot.started_at is not None and self.outbox is not None
        logger.warning(
            "job %s %s attempt %d: %s",
            job.id,
            job.task_path,
            job.attempt,
            message,
            extra=logs.job_fields(job, self.id),
        )
        self.outbox.put(
            values.Finished(
                job=job,
                outcome=outcome,
                started_at=slot.started_at,
                finished_at=timezone.now(),
                error_type=error_type,
                error_message=message,
            )
        )
        self.pool.renew(slot)

    def _kill(self, slot: Slot) -> None:
        """Stop the child; if its job finished just in time, record that outcome
        (``slot.job`` is None afterwards)."""
        finished_at = timezone.now()
        report = self.pool.kill(slot)
        if report is not None:
            self._record(slot, finished_at, report)

    # --- heartbeat and duties ------------------------------------------------------

    def _maintain(self, now: float) -> None:
        if now >= self.next_heartbeat:
            self._heartbeat()
            if self.listener is not None and self.listener.fileno() is None:
                self.listener.connect()
            self.next_heartbeat = now + conf.QUEUES_HEARTBEAT_INTERVAL
        self.duties.run_due(now)

    def _take_counts(self) -> tuple[int, int]:
        return self.outbox.take_counts() if self.outbox is not None else (0, 0)

    def _heartbeat(self) -> None:
        held_here = [slot.job for slot in self.busy_slots() if slot.job] + list(self.backlog)
        lifecycle.heartbeat(self.id)
        held = lifecycle.renew_leases(self.id, {job.id: job.attempt for job in held_here})
        lifecycle.count_work(self.id, *self._take_counts())
        self.backlog = deque(job for job in self.backlog if job.id in held)
        for slot in self.busy_slots():
            if slot.job is not None and slot.job.id not in held:
                logger.warning(
                    "job %s is no longer held by this worker (cancelled or recovered); stopping it",
                    slot.job.id,
                    extra=logs.job_fields(slot.job, self.id),
                )
                self._kill(slot)  # had it finished meanwhile, its outcome will be refused
                self.pool.renew(slot)

    def _back_off(self, trouble: str) -> None:
        self.db_backoff = min(max(self.db_backoff * 2, 0.5), 10.0)
        logger.error("%s; retrying in %.1fs", trouble, self.db_backoff)
        db.connections.close_all()
        time.sleep(self.db_backoff)


def attempt_outcome(
    job: values.ClaimedJob, report: Report, started_at: datetime, finished_at: datetime
) -> values.Finished:
    """What the lifecycle records of an attempt that ran to its end and reported how."""
    return values.Finished(
        job=job,
        outcome=Outcome.SUCCEEDED if report.ok else Outcome.FAILED,
        started_at=started_at,
        finished_at=finished_at,
        result_json=report.result_json,
        error_type=report.error_type,
        error_message=report.error_message,
        traceback=report.traceback,
        retryable=report.retryable,
    )


def _drain_fd(fd: int) -> None:
    try:
        os.read(fd, 4096)
    except BlockingIOError:
        pass
