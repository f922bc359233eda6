"""ASGI entry point served by daphne: HTTP now, WebSockets through Channels."""

import os

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskweb.settings")
django_asgi_app = get_asgi_application()
if settings.SERVE_STATIC:
    # daphne serves /static/ itself, so one process is a complete site with no web server.
    django_asgi_app = ASGIStaticFilesHandler(django_asgi_app)

from channels.routing import ProtocolTypeRouter  # noqa: E402  (needs Django set up first)

application = ProtocolTypeRouter({"http": django_asgi_app})
