"""A project's URLconf that mounts Taskweb both at the root and under ``ops/``."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("ops/", include("queues.urls")),
    path("", include("queues.urls")),
]
