from django.apps import AppConfig


class TaskwebConfig(AppConfig):
    """The site itself; an app only so that its example tasks are discovered."""

    name = "taskweb"
    verbose_name = "Taskweb site"
