"""The queues a project declares exist without set-up, also after a flush (queues/declared.py)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from queues.backend import QueueBackend
from queues.models import Queue

from . import tasks

pytestmark = pytest.mark.django_db

BACKEND = f"{QueueBackend.__module__}.{QueueBackend.__qualname__}"


@pytest.fixture
def mail_declared(settings) -> None:
    settings.TASKS = {"default": {"BACKEND": BACKEND, "QUEUES": ["default", "mail"]}}


def names() -> set[str]:
    return set(Queue.objects.values_list("name", flat=True))


@pytest.mark.django_db(transaction=True)
def test_a_flush_as_transactional_tests_do_leaves_the_declared_queues(mail_declared):
    call_command("flush", interactive=False, verbosity=0)
    assert names() == {"default", "mail"}


def test_migrate_creates_the_queues_named_in_the_tasks_setting(mail_declared):
    call_command("migrate", verbosity=0)
    assert "mail" in names()


def test_a_declared_queue_missing_from_the_table_is_created_on_first_enqueue(mail_declared):
    Queue.objects.filter(name="mail").delete()
    result = tasks.noop.using(queue_name="mail").enqueue()
    assert Queue.objects.get(name="mail").jobs.get().pk == int(result.id)
