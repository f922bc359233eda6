from django.apps import AppConfig
from django.db.models.signals import post_migrate


class QueuesConfig(AppConfig):
    name = "queues"
    verbose_name = "Queues"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import checks, declared, quarantine, registry  # noqa: F401  (importing checks registers them)
        from .lifecycle.maintenance import sweep_every_table

        registry.discover()
        quarantine.sweeper = sweep_every_table
        post_migrate.connect(declared.create_after_migrate, sender=self)
