"""Console URLs, under the ``console`` namespace wherever ``queues.urls`` is included."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from . import actions, converters, pages, schedules, workflows  # noqa: F401  (converters registers <queue:>)

app_name = "console"

urlpatterns = [
    path("", pages.overview, name="overview"),
    # The console's own login page, so a project needs no LOGIN_URL for it (see permissions.py).
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="queues/login.html", redirect_authenticated_user=True, next_page="console:overview"
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="console:login"), name="logout"),
    path("queues/", actions.queue_create, name="queue-create"),
    path("queues/<queue:name>/", pages.queue_detail, name="queue"),
    path("queues/<queue:name>/pause", actions.queue_pause, name="queue-pause"),
    path("queues/<queue:name>/resume", actions.queue_resume, name="queue-resume"),
    path("queues/<queue:name>/settings", actions.queue_settings, name="queue-settings"),
    path("queues/<queue:name>/purge/confirm", actions.queue_purge_confirm, name="queue-purge-confirm"),
    path("queues/<queue:name>/purge", actions.queue_purge, name="queue-purge"),
    path("queues/<queue:name>/delete", actions.queue_delete, name="queue-delete"),
    path("jobs/", pages.jobs, name="jobs"),
    path("jobs/bulk", actions.jobs_bulk, name="jobs-bulk"),
    path("jobs/<int:job_id>/", pages.job_page, name="job"),
    path("jobs/<int:job_id>/retry", actions.job_retry, name="job-retry"),
    path("jobs/<int:job_id>/cancel", actions.job_cancel, name="job-cancel"),
    path("jobs/<int:job_id>/delete", actions.job_delete, name="job-delete"),
    path("dead/", pages.dead_letters, name="dead"),
    path("dead/confirm", actions.dead_confirm, name="dead-confirm"),
    path("dead/replay", actions.dead_replay, name="dead-replay"),
    path("dead/delete", actions.dead_delete, name="dead-delete"),
    path("workers/", pages.workers, name="workers"),
    # The live socket's address: pages reverse it, and console/routing.py resolves sockets with it.
    path("ws/console/", pages.live_socket, name="socket"),
    *schedules.urlpatterns,
    *workflows.urlpatterns,
]
