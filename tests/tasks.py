"""Task functions used by the tests; module level so that workers can import them."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

from django.db import connection

from queues.compat import TaskContext, task
from queues.exceptions import NonRetryable
from queues.progress import set_progress


def _log(line: str) -> None:
    """Append one line to the file named by TASKWEB_TEST_LOG (atomic for short lines)."""
    path = os.environ.get("TASKWEB_TEST_LOG")
    if path:
        with Path(path).open("a") as handle:
            handle.write(line + "\n")


@task
def noop() -> None:
    return None


@task
def add(a: int, b: int) -> int:
    return a + b


@task(takes_context=True)
def record(context: TaskContext, sleep: float = 0.0) -> str:
    """Logs "<job id> <attempt>" when it starts, so tests can count real executions."""
    _log(f"{context.task_result.id} {context.attempt}")
    if sleep:
        time.sleep(sleep)
    return context.task_result.id


@task(takes_context=True)
def record_then_sleep_first_attempt(context: TaskContext, seconds: float) -> str:
    _log(f"{context.task_result.id} {context.attempt}")
    if context.attempt == 1:
        time.sleep(seconds)
    return "done"


@task
def enqueue_add(a: int, b: int) -> None:
    """Enqueues another job, as real tasks often do."""
    add.enqueue(a, b)


@task
def enqueue_itself() -> None:
    """Never ends: each run enqueues the next."""
    enqueue_itself.enqueue()


@task
def fail(message: str = "boom") -> None:
    raise RuntimeError(message)


@task
def fail_permanently(message: str = "bad input") -> None:
    raise NonRetryable(message)


@task(no_retry_on=(KeyError,))
def fail_with_key_error() -> None:
    raise KeyError("missing")


@task(timeout=1, max_attempts=2)
def hang(seconds: float = 3600) -> None:
    time.sleep(seconds)


@task
def report_progress(steps: int = 4) -> int:
    for step in range(1, steps + 1):
        set_progress(100 * step / steps, f"step {step}")
    return steps


@task
def returns_unserialisable() -> object:
    return object()


@task(max_attempts=7, timeout=11)
def with_options() -> None:
    return None


@task(takes_context=True)
def timed(context: TaskContext, seconds: float) -> None:
    """Sleeps, then logs "<job id> <start> <end>" as the job itself saw them."""
    start = time.time()
    time.sleep(seconds)
    _log(f"{context.task_result.id} {start} {time.time()}")


@task
def fail_while_file_exists(path: str) -> str:
    if Path(path).exists():
        raise RuntimeError(f"{path} exists")
    return "ok"


@task
def log_line(message: str = "hello from the task") -> None:
    logging.getLogger("tests.tasks").info(message)


@task
def fail_until_file_exists(path: str) -> str:
    """Dies at once (no retry) until ``path`` exists: a bug that an operator fixes, then replays."""
    if not Path(path).exists():
        raise NonRetryable(f"{path} is missing")
    return "fixed"


CHAOS_RUNS_TABLE = "chaos_runs"


@task(takes_context=True, max_attempts=25)
def chaos_mark(context: TaskContext, sleep: float = 0.0, first_sleep: float = 0.0) -> str:
    """Counts its own executions: one row per run in ``chaos_runs`` (job id, attempt, pid),
    written before any work, so a run cut short by a kill still leaves its mark.

    Many attempts are allowed because the chaos suite kills workers on purpose: a job
    caught in several kills must still end up succeeded, not dead.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {CHAOS_RUNS_TABLE} (job_id, attempt, pid) VALUES (%s, %s, %s)",
            [int(context.task_result.id), context.attempt, os.getpid()],
        )
    pause = sleep + (first_sleep if context.attempt == 1 else 0.0)
    if pause:
        time.sleep(pause)
    return f"attempt {context.attempt}"


BASE_EXCEPTIONS = {
    "SystemExit": SystemExit,
    "KeyboardInterrupt": KeyboardInterrupt,
    "GeneratorExit": GeneratorExit,
}


@task(max_attempts=1)
def stop_process(how: str) -> None:
    """Ends the way code ends a process: ``exit()``, or SystemExit, KeyboardInterrupt or
    GeneratorExit raised by name; BaseExceptions that are not Exceptions."""
    if how == "exit()":
        exit(3)
    raise BASE_EXCEPTIONS[how](f"stopped by {how}")


@task(max_attempts=1)
def exit_process_at_once() -> None:
    """Leaves its process without unwinding, as a crash in C code would."""
    os._exit(7)


@task
def returns_bytes_and_a_tuple() -> tuple[bytes, tuple[int, int]]:
    return b"text", (1, 2)


@task
def returns_text_with_a_nul() -> str:
    return "a\x00b"


@task(takes_context=True)
def measure(context: TaskContext, text: str, *, label: str = "") -> dict[str, object]:
    """What it was called with, in brief: proves that a large argument arrived whole."""
    return {
        "label": label,
        "length": len(text),
        "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "context_saw_the_same": context.task_result.args == [text],
    }


@task
def blob(size: int) -> str:
    """A result of ``size`` characters."""
    return "x" * size


@task
def looks_like_a_reference() -> dict[str, object]:
    """A small result shaped like the reference a row holds for an offloaded payload."""
    return {"$offloaded": {"storage": "payloads", "name": "not/a/real/object.json", "size": 1}}


@task
def echo(text: str) -> str:
    return text


@task(encrypt=True)
def secret_sum(a: int, b: int, label: str = "") -> dict[str, object]:
    """An encrypted task: its arguments, result and errors are stored as ciphertext."""
    return {"sum": a + b, "label": label}


@task(encrypt=True)
def secret_failure(secret: str) -> None:
    """Fails with its (encrypted) argument in the message and the traceback."""
    raise NonRetryable(f"cannot use {secret}")


@task
def echo_args(*args: object, **kwargs: object) -> list[object]:
    """Returns what it was given: a plain task whose arguments tests can look for."""
    return [list(args), kwargs]


@task
def step_log(label: str, sleep: float = 0.0) -> str:
    """A workflow step: logs "start <label>" and "end <label>" around its work."""
    _log(f"start {label}")
    if sleep:
        time.sleep(sleep)
    _log(f"end {label}")
    return label


@task
def step_log_after_file(label: str, path: str) -> str:
    """A workflow step that logs its start, then works until ``path`` exists."""
    _log(f"start {label}")
    while not Path(path).exists():
        time.sleep(0.05)
    _log(f"end {label}")
    return label


@task
def concat(previous: object, suffix: str) -> str:
    """A chain step taking the result of the step before it."""
    return f"{previous}{suffix}"


@task
def workflow_callback(workflow_id: int, kind: str) -> str:
    """A workflow callback: logs "callback <kind> <workflow id>" once per run."""
    _log(f"callback {kind} {workflow_id}")
    return kind


@task
def pid_after_file(path: str) -> int:
    """Logs "start <pid>", works until ``path`` exists, returns the pid it ran in."""
    _log(f"start {os.getpid()}")
    while not Path(path).exists():
        time.sleep(0.05)
    return os.getpid()
