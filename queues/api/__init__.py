"""The REST API under ``/api/``: one NinjaAPI, one router per resource.

OpenAPI at ``/api/openapi.json``, interactive docs at ``/api/docs``.
"""

from __future__ import annotations

from . import dead_letters, errors, jobs, queues, schedules, security, stats, workers, workflows

api = errors.JsonAPI(
    title="Taskweb",
    version="1",
    description=(
        "Background jobs with the database as the broker. Authenticate with "
        "`Authorization: Bearer <token>` (create one with "
        "`manage.py taskctl token create NAME --user OWNER --scope read|operate|admin`) "
        "or with an identity provider's JWT when QUEUES_OIDC_ISSUER, QUEUES_OIDC_AUDIENCE and "
        "QUEUES_OIDC_JWKS_URL are set, "
        "or, from the console, with a staff session and the CSRF header. Reading needs the "
        "queues.view_job permission; each change needs its own permission (and, for a token, "
        "its scope); a refusal is 403 naming what is missing."
    ),
    auth=[security.Undeclared()],
    urls_namespace="api",
)
api.add_decorator(security.guard_body, mode="view")
for module in (jobs, queues, dead_letters, workers, schedules, stats, workflows):
    api.add_router(module.router.prefix, module.router)

__all__ = ["api"]
