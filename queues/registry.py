"""Finds task callables by dotted path and lists the tasks this project defines."""

from __future__ import annotations

from functools import cache

from django.utils.module_loading import autodiscover_modules, import_string

from .compat import Task
from .exceptions import UnknownTask

_registered: dict[str, Task] = {}


def register(task: Task) -> None:
    """Called by every task defined with Taskweb's backend, so the console can list it."""
    _registered.setdefault(task.module_path, task)


def discover() -> None:
    """Import each installed app's ``tasks`` module so their tasks register themselves."""
    autodiscover_modules("tasks")


def registered_tasks() -> dict[str, Task]:
    return dict(sorted(_registered.items()))


@cache
def get_task(path: str) -> Task:
    """The Task at ``path``; cached because workers look the same ones up all day."""
    if path in _registered:
        return _registered[path]
    try:
        obj = import_string(path)
    except ImportError as exc:
        raise UnknownTask(path, str(exc)) from exc
    if not isinstance(obj, Task):
        raise UnknownTask(path, "it is not decorated with @task")
    return obj
