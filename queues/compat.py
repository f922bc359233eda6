"""The one place that knows where Django's Tasks framework lives.

Django 6.x ships it as ``django.tasks``; on Django 5.2 the ``django-tasks``
backport provides the same API as ``django_tasks`` (two names differ: the invalid-task
exception and the home of ``normalize_json``).
"""

from __future__ import annotations

try:
    from django import tasks as framework
    from django.tasks.exceptions import InvalidTask as InvalidTaskError
    from django.utils.json import normalize_json
except ImportError:
    import django_tasks as framework
    from django_tasks.exceptions import InvalidTaskError
    from django_tasks.utils import normalize_json

from importlib import import_module

_base = import_module(f"{framework.__name__}.base")
_signals = import_module(f"{framework.__name__}.signals")

BaseTaskBackend = import_module(f"{framework.__name__}.backends.base").BaseTaskBackend
TaskResultDoesNotExist = import_module(f"{framework.__name__}.exceptions").TaskResultDoesNotExist
DEFAULT_TASK_QUEUE_NAME = framework.DEFAULT_TASK_QUEUE_NAME
TaskContext = framework.TaskContext
TaskResult = framework.TaskResult
TaskResultStatus = framework.TaskResultStatus
task = framework.task
task_backends = framework.task_backends
DEFAULT_TASK_BACKEND_ALIAS = _base.DEFAULT_TASK_BACKEND_ALIAS
TASK_MAX_PRIORITY = _base.TASK_MAX_PRIORITY
TASK_MIN_PRIORITY = _base.TASK_MIN_PRIORITY
Task = _base.Task
TaskError = _base.TaskError
task_enqueued = _signals.task_enqueued
task_finished = _signals.task_finished
task_started = _signals.task_started

__all__ = [
    "DEFAULT_TASK_BACKEND_ALIAS",
    "DEFAULT_TASK_QUEUE_NAME",
    "TASK_MAX_PRIORITY",
    "TASK_MIN_PRIORITY",
    "BaseTaskBackend",
    "InvalidTaskError",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultStatus",
    "normalize_json",
    "task",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_started",
]
