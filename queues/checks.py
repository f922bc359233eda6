"""System checks that catch set-ups in which Taskweb cannot work as documented."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from . import oidc


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
def check_oidc(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """Identity-provider sign-in half configured would refuse every JWT with a puzzling error."""
    hint = "See the README's 'Signing in with an identity provider'."
    return [checks.Error(message, hint=hint, id="queues.E002") for message in oidc.configuration_errors()]
