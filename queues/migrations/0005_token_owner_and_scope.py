"""Every token gets a scope and an owner.

Tokens made before scopes existed had every right, so they get the ``admin`` scope:
nothing a token could do before stops working, except what its owner may not do.
A token without an owner is given to the first active superuser (by id: the account
``make run`` creates); with no superuser nobody could vouch for it, so it is deleted.
Making the owner required is the next migration: PostgreSQL cannot alter a table in
the transaction that just updated its rows' deferred foreign keys.
"""

from django.db import migrations, models


def give_tokens_an_owner(apps, schema_editor):
    ApiToken = apps.get_model("queues", "ApiToken")
    User = apps.get_model("auth", "User")
    ownerless = ApiToken.objects.filter(user=None)
    owner = User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
    if owner is None:
        ownerless.delete()
    else:
        ownerless.update(user=owner)


class Migration(migrations.Migration):
    dependencies = [
        ("queues", "0004_operations"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="scope",
            field=models.CharField(
                choices=[("read", "Read"), ("operate", "Operate"), ("admin", "Admin")],
                default="admin",
                max_length=8,
            ),
        ),
        migrations.RunPython(give_tokens_an_owner, migrations.RunPython.noop),
    ]
