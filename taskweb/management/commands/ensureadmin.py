"""Create the first staff account if there is none, for the one-command start."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create a superuser from TASKWEB_ADMIN_USER/TASKWEB_ADMIN_PASSWORD, or with a random password."

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("TASKWEB_ADMIN_USER", "admin")
        password = os.environ.get("TASKWEB_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        if "TASKWEB_ADMIN_PASSWORD" in os.environ:
            self.stdout.write(
                f"Created superuser {username!r} with the password from TASKWEB_ADMIN_PASSWORD."
            )
        else:
            self.stdout.write(
                self.style.WARNING(
                    f"Created superuser {username!r} with password {password}\n"
                    "It is shown only this once: note it now (or change it in the admin)."
                )
            )
