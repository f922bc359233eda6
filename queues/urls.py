"""Everything Taskweb serves over HTTP, for one ``include`` under any prefix.

    urlpatterns += [path("ops/", include("queues.urls"))]

gives the console at ``ops/`` (its login page and live socket included), the REST API
at ``ops/api/`` (docs at ``ops/api/docs``), ``ops/health`` and ``ops/metrics``. Every
link, redirect and socket URL is reversed, so nothing assumes where it is mounted.
"""

from __future__ import annotations

from django.urls import include, path

from .api import api
from .health import health_view
from .metrics import metrics_view

urlpatterns = [
    path("api/", api.urls),
    path("health", health_view, name="queues-health"),
    path("metrics", metrics_view, name="queues-metrics"),
    path("", include("queues.console.urls")),
]
