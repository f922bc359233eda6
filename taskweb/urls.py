"""The site: Django's admin, and Taskweb mounted at the root as any project mounts it."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("queues.urls")),
]
