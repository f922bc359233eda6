"""Minimal Django settings for django-tasks-db, reading the store from BENCH_URL."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

SECRET_KEY = "bench-only"
USE_TZ = True
INSTALLED_APPS = ["django_tasks", "django_tasks_db"]
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}


def database(url: str) -> dict:
    """The same tuning Taskweb gets: WAL on SQLite, persistent connections everywhere."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": "/" + parts.path.lstrip("/"),
            "CONN_MAX_AGE": 600,
            "OPTIONS": {
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": parts.username or "postgres",
        "HOST": parts.hostname,
        "PORT": parts.port or 5432,
        "CONN_MAX_AGE": 600,
    }


DATABASES = {"default": database(os.environ["BENCH_URL"])}
