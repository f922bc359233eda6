"""System checks that catch set-ups in which Taskweb cannot work as documented."""

from __future__ import annotations

import os
from typing import Any

from django.conf import settings
from django.core import checks

from . import encryption, oidc
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
def check_oidc(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """Identity-provider sign-in half configured would refuse every JWT with a puzzling error."""
    hint = "See the README's 'Signing in with an identity provider'."
    return [checks.Error(message, hint=hint, id="queues.E002") for message in oidc.configuration_errors()]


@checks.register()
def check_payload_keys(app_configs: Any, **kwargs: Any) -> list[checks.CheckMessage]:
    """Say at start-up what would otherwise surface job by job: keys that cannot be read.

    A warning, not an error: the process still starts, and only encrypted jobs fail, each
    with the same reason (a worker that refused to start would restart in a loop instead)."""
    try:
        encryption.keys()
    except encryption.PayloadKeyError as exc:
        if conf.QUEUES_ENCRYPT_ALL or os.environ.get(encryption.variable(), "").strip():
            return [
                checks.Warning(
                    f"Encrypted payloads cannot be read or written here: {exc}.",
                    hint="Set it to Fernet keys separated by commas (README, Encrypted payloads).",
                    id="queues.W001",
                )
            ]
    return []
