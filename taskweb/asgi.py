"""ASGI entry point served by daphne: HTTP, and the console's WebSocket through Channels."""

import os

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

from queues.asgi import with_console

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskweb.settings")
application = get_asgi_application()
if settings.SERVE_STATIC:
    # daphne serves /static/ itself, so one process is a complete site with no web server.
    application = ASGIStaticFilesHandler(application)

application = with_console(application)
