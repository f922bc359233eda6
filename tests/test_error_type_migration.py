"""Migration 0007: error types recorded under a bare name become importable class paths."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from queues.compat import TaskError
from queues.models import Attempt, Circuit, DeadLetter, Job
from queues.states import Outcome

from .migrating import migrate, schema_at

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("queues", "0006_token_owner_required")]
AFTER = [("queues", "0007_importable_error_types")]
OLD_NAMES = ["WorkerLost", "WorkerShutdown", "WorkerChildDied", "ResultNotSerialisable",
             "TaskImportError", "Nack", "TimeoutError"]  # fmt: skip


@pytest.fixture
def old_apps() -> Iterator[Any]:
    """The schema before the rename; the latest one again afterwards."""
    yield from schema_at(BEFORE)


def _old_rows(apps: Any) -> None:
    """A job whose attempts, dead letter, last error and circuit use the bare names."""
    queue = apps.get_model("queues", "Queue").objects.get_or_create(name="default")[0]
    job = apps.get_model("queues", "Job").objects.create(
        queue=queue, task_path="tests.tasks.noop", last_error="WorkerLost: worker w stopped heartbeating"
    )
    apps.get_model("queues", "Attempt").objects.bulk_create(
        apps.get_model("queues", "Attempt")(
            job=job, number=n, outcome=Outcome.FAILED, error_type=name, finished_at=timezone.now()
        )
        for n, name in enumerate([*OLD_NAMES, "builtins.KeyError"], start=1)
    )
    apps.get_model("queues", "DeadLetter").objects.create(
        job=job, queue_name="default", task_path=job.task_path, reason="r", error_type="Nack"
    )
    apps.get_model("queues", "Circuit").objects.create(task_path=job.task_path, last_error="TimeoutError")


def test_every_recorded_error_type_becomes_a_class_path_that_imports(old_apps):
    _old_rows(old_apps)
    migrate(AFTER)
    paths = list(Attempt.objects.order_by("number").values_list("error_type", flat=True))
    classes = [TaskError(exception_class_path=path, traceback="").exception_class for path in paths]
    assert [kind.__name__ for kind in classes] == [*OLD_NAMES, "KeyError"]
    assert paths[-1] == "builtins.KeyError", "a path that already imports stays as it was"


def test_dead_letters_and_last_errors_follow(old_apps):
    _old_rows(old_apps)
    migrate(AFTER)
    assert DeadLetter.objects.get().error_type == "queues.exceptions.Nack"
    assert Job.objects.get().last_error == "queues.exceptions.WorkerLost: worker w stopped heartbeating"
    assert Circuit.objects.get().last_error == "builtins.TimeoutError"


def test_the_migration_reverses_to_the_bare_names(old_apps):
    _old_rows(old_apps)
    migrate(AFTER)
    migrate(BEFORE)
    assert sorted(Attempt.objects.values_list("error_type", flat=True)) == sorted(
        [*OLD_NAMES, "builtins.KeyError"]
    )
