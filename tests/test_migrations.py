"""Data migrations, run back and forth on the real database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from queues.compat import TaskError
from queues.models import Attempt, Circuit, DeadLetter, Job
from queues.states import Outcome

from .factories import make_job

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("queues", "0004_operations")
AFTER = ("queues", "0005_importable_error_types")


def migrate(target: tuple[str, str]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])


@pytest.fixture
def before_error_paths() -> Iterator[None]:
    migrate(BEFORE)
    yield
    migrate(AFTER)  # what every other test expects


@pytest.mark.usefixtures("before_error_paths")
def test_bare_error_names_become_importable_exception_paths():
    job = make_job()
    Job.objects.filter(pk=job.pk).update(last_error="WorkerLost: worker w stopped heartbeating")
    now = timezone.now()
    names = ["WorkerLost", "WorkerShutdown", "WorkerChildDied", "ResultNotSerialisable",
             "TaskImportError", "Nack", "TimeoutError", "builtins.KeyError"]  # fmt: skip
    Attempt.objects.bulk_create(
        Attempt(job=job, number=n, outcome=Outcome.FAILED, error_type=name, finished_at=now)
        for n, name in enumerate(names, start=1)
    )
    DeadLetter.objects.create(
        job=job, queue_name="default", task_path=job.task_path, reason="r", error_type="Nack"
    )
    Circuit.objects.create(task_path=job.task_path, last_error="TimeoutError")

    migrate(AFTER)

    paths = list(Attempt.objects.order_by("number").values_list("error_type", flat=True))
    assert paths[-1] == "builtins.KeyError", "a path already importable stays"
    assert [TaskError(exception_class_path=p, traceback="").exception_class.__name__ for p in paths] == [
        name.rpartition(".")[2] for name in names
    ]
    assert DeadLetter.objects.get().error_type == "queues.exceptions.Nack"
    assert Job.objects.get().last_error == "queues.exceptions.WorkerLost: worker w stopped heartbeating"
    assert Circuit.objects.get().last_error == "builtins.TimeoutError"
