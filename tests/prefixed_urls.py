"""A project's URLconf: startproject's admin, then Taskweb under a prefix as the README shows."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [path("admin/", admin.site.urls)]
urlpatterns += [path("ops/", include("queues.urls"))]
