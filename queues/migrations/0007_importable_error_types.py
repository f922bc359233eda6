"""Error types recorded under a bare name become the dotted paths of exception classes.

``TaskError.exception_class`` imports ``error_type``; the bare names Taskweb used to
write for its own outcomes (``WorkerLost``, ``TimeoutError``...) did not import. Each
table is rewritten with one UPDATE (a CASE over the names), so one scan of the
attempt history does it. ``last_error`` ("type: message") follows.
"""

from django.db import migrations, models
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Concat, Substr

RENAMED = {
    "WorkerLost": "queues.exceptions.WorkerLost",
    "WorkerShutdown": "queues.exceptions.WorkerShutdown",
    "WorkerChildDied": "queues.exceptions.WorkerChildDied",
    "ResultNotSerialisable": "queues.exceptions.ResultNotSerialisable",
    "TaskImportError": "queues.exceptions.TaskImportError",
    "Nack": "queues.exceptions.Nack",
    "TimeoutError": "builtins.TimeoutError",
}


def rename(apps, names):
    for model in ("Attempt", "DeadLetter"):
        apps.get_model("queues", model).objects.filter(error_type__in=names).update(
            error_type=Case(*(When(error_type=old, then=Value(new)) for old, new in names.items()))
        )
    for model in ("Job", "Circuit"):
        starts = Q()
        cases = []
        for old, new in names.items():
            starts |= Q(last_error=old) | Q(last_error__startswith=f"{old}: ")
            cases += [
                When(last_error=old, then=Value(new)),
                When(
                    last_error__startswith=f"{old}: ",
                    then=Concat(Value(new), Substr("last_error", len(old) + 1), output_field=models.TextField()),
                ),
            ]
        apps.get_model("queues", model).objects.filter(starts).update(
            last_error=Case(*cases, default=F("last_error"), output_field=models.TextField())
        )


def forwards(apps, schema_editor):
    rename(apps, RENAMED)


def backwards(apps, schema_editor):
    rename(apps, {new: old for old, new in RENAMED.items()})


class Migration(migrations.Migration):
    dependencies = [("queues", "0006_token_owner_required")]

    operations = [migrations.RunPython(forwards, backwards)]
