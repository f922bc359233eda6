"""Finds tasks by dotted path: input is looked up, only stored paths are imported.

Every task defined with Taskweb's backend registers itself when its module is
imported, and each installed app's ``tasks`` module is imported at startup. A
path that comes from a person or a client (API, admin, taskctl, schedules) is
looked up among those registered tasks and never imported: importing would run
the top-level code of any module a client names. The worker, and a result read
back, import the path a job stores, which only a validated enqueue wrote.
"""

from __future__ import annotations

import re
from functools import cache

from django.utils.module_loading import autodiscover_modules, import_string

from .compat import Task
from .exceptions import UnknownTask

_registered: dict[str, Task] = {}
DOTTED_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def register(task: Task) -> None:
    """Called by every task defined with Taskweb's backend, so the doors can find it."""
    _registered.setdefault(task.module_path, task)


def discover() -> None:
    """Import each installed app's ``tasks`` module so their tasks register themselves."""
    autodiscover_modules("tasks")


def registered_tasks() -> dict[str, Task]:
    return dict(sorted(_registered.items()))


def _well_formed(path: object) -> str:
    if not isinstance(path, str) or not DOTTED_PATH.fullmatch(path):
        raise UnknownTask(path, "is not a task path: tasks are named by dotted path, e.g. myapp.tasks.send")
    return path


def lookup(path: object) -> Task:
    """The registered task called ``path``, for input from people and clients; never imports."""
    task = _registered.get(_well_formed(path))  # type: ignore[arg-type]
    if task is None:
        raise UnknownTask(
            path,
            "is not a registered task: define it with @task in an installed app's tasks module "
            "(or in a module the process has imported)",
        )
    return task


@cache
def load(path: str) -> Task:
    """The task a stored job names, imported if this process has not registered it yet.

    Cached because workers look the same ones up all day.
    """
    if path in _registered:
        return _registered[path]
    try:
        obj = import_string(_well_formed(path))
    except ImportError as exc:
        raise UnknownTask(path, f"cannot be imported: {exc}") from exc
    if not isinstance(obj, Task):
        raise UnknownTask(path, "cannot be imported as a task: it is not decorated with @task")
    return obj
