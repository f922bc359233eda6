"""``GET /health``: can this web process reach the database, and are workers alive?

Load balancers and orchestrators poll it. The answer is 503 only when the
database is unreachable (this process cannot serve anything useful); no live
worker is reported as ``degraded`` with 200, because the web side still works
and restarting it would not bring a worker back.
"""

from __future__ import annotations

import time

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .models import Worker


def _database() -> dict[str, object]:
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {
        "ok": True,
        "vendor": connection.vendor,
        "latency_ms": round((time.monotonic() - started) * 1000, 2),
    }


def _workers() -> dict[str, object]:
    alive = Worker.objects.alive()
    newest = alive.order_by("-last_heartbeat").values_list("last_heartbeat", flat=True).first()
    return {
        "ok": newest is not None,
        "alive": alive.count(),
        "last_heartbeat": newest.isoformat() if newest else None,
    }


@never_cache
@require_GET
def health_view(request: HttpRequest) -> JsonResponse:
    try:
        checks = {"database": _database(), "workers": _workers()}
    except DatabaseError as exc:
        # The class name only: connection errors can carry host names and user names.
        database = {"ok": False, "error": f"{type(exc).__name__}: the database is unreachable"}
        return JsonResponse({"status": "unavailable", "checks": {"database": database}}, status=503)
    status = "ok" if checks["workers"]["ok"] else "degraded"
    return JsonResponse({"status": status, "checks": checks})
