"""URL parts that only match what can exist, so that anything else is a 404 before any
view or query sees it (a NUL character, say, which no database takes in a query)."""

from __future__ import annotations

from django.urls import register_converter


class QueueName:
    regex = r"[A-Za-z0-9_.-]{1,64}"  # models.QUEUE_NAME_VALIDATOR

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


class TaskPath(QueueName):
    regex = r"[A-Za-z0-9_.]{1,255}"  # a dotted path, or "raw"


register_converter(QueueName, "queue")
register_converter(TaskPath, "task")
