from django.contrib import admin
from django.urls import include, path

from queues.api import api
from queues.health import health_view
from queues.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
    path("health", health_view, name="health"),
    path("metrics", metrics_view, name="metrics"),
    path("", include("queues.console.urls")),
]
