"""The queues a project declares exist without anyone creating them.

``default``, and every name in the ``QUEUES`` option of a Taskweb backend in ``TASKS``,
are created after each ``migrate`` and after each ``flush`` (Django emits post_migrate
for both; a flush is how TransactionTestCase and pytest-django's ``transactional_db``
empty the tables, and data migrations do not run again then), and on first use if
they are missing anyway. A name declared nowhere is still refused at enqueue unless
``QUEUES_AUTO_CREATE`` is on: a typo never creates a queue nobody works on.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps
from django.db import DEFAULT_DB_ALIAS, router

from .compat import DEFAULT_TASK_QUEUE_NAME, task_backends
from .models import QUEUE_NAME_VALIDATOR, Queue


def declared_queue_names() -> set[str]:
    """``default`` and the ``QUEUES`` of every Taskweb backend in ``TASKS`` (read afresh: tests change it)."""
    names = {DEFAULT_TASK_QUEUE_NAME}
    for backend in task_backends.all():
        # Taskweb's backend says so (QueueBackend.declares_queues); other backends' QUEUES are theirs.
        if getattr(backend, "declares_queues", False):
            names.update(backend.queues)
    # An invalid name can never be enqueued onto; the lifecycle says why when someone tries.
    return {name for name in names if isinstance(name, str) and QUEUE_NAME_VALIDATOR.regex.match(name)}


def ensure_declared_queues(model: type[Queue] = Queue, using: str = DEFAULT_DB_ALIAS) -> None:
    """Create the declared queues that do not exist yet (one query when they all do)."""
    names = declared_queue_names()
    existing = set(model._default_manager.using(using).filter(name__in=names).values_list("name", flat=True))
    if missing := names - existing:
        model._default_manager.using(using).bulk_create(
            [model(name=name) for name in sorted(missing)], ignore_conflicts=True
        )


def create_after_migrate(using: str = DEFAULT_DB_ALIAS, apps: Any = global_apps, **kwargs: Any) -> None:
    """post_migrate receiver (connected in apps.py)."""
    try:
        model = apps.get_model("queues", "Queue")
    except LookupError:  # the queues app was migrated to zero
        return
    if router.allow_migrate_model(using, model):
        ensure_declared_queues(model, using)
