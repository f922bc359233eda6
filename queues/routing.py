"""WebSocket URLs of the queues app."""

from __future__ import annotations

from django.urls import path

from .consumers import ConsoleConsumer

websocket_urlpatterns = [path("ws/console/", ConsoleConsumer.as_asgi())]
