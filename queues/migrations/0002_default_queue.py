from django.db import migrations


def create_default_queue(apps, schema_editor):
    apps.get_model("queues", "Queue").objects.get_or_create(name="default")


class Migration(migrations.Migration):
    dependencies = [("queues", "0001_initial")]

    operations = [migrations.RunPython(create_default_queue, migrations.RunPython.noop)]
