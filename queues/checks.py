"""System checks that catch set-ups in which Taskweb cannot work as documented."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.files.storage import storages

from .conf import conf


@checks.register()
def check_app_order(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """Channels ships a ``runworker`` too; the earliest app in INSTALLED_APPS wins it."""
    apps = list(settings.INSTALLED_APPS)
    if "channels" in apps and apps.index("queues") > apps.index("channels"):
        return [
            checks.Error(
                "'queues' must come before 'channels' in INSTALLED_APPS.",
                hint="Otherwise 'manage.py runworker' runs Channels' worker, not Taskweb's.",
                id="queues.E001",
            )
        ]
    return []


@checks.register()
def check_payload_storage(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """Large payloads go to a STORAGES alias: a typo would refuse every large enqueue."""
    alias = conf.QUEUES_OFFLOAD_STORAGE
    if conf.QUEUES_OFFLOAD_THRESHOLD is None or alias in storages.backends:
        return []
    return [
        checks.Error(
            f"QUEUES_OFFLOAD_STORAGE names {alias!r}, which is not an alias of STORAGES.",
            hint=f"Add {alias!r} to STORAGES, name another alias, or set QUEUES_OFFLOAD_THRESHOLD = None.",
            id="queues.E002",
        )
    ]
