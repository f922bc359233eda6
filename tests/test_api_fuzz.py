"""Property-based fuzzing of the whole OpenAPI schema: no input may cause a 5xx.

Schemathesis generates valid and invalid requests for every operation from
``/api/openapi.json`` and sends them through the real WSGI stack with a real token.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from .factories import make_job, make_token

schema = schemathesis.openapi.from_wsgi("/api/openapi.json", get_wsgi_application())


# The WSGI handler closes the database connection after each request, as in
# production: that needs real commits, hence transactional_db.
@pytest.fixture
def token(transactional_db) -> str:
    make_job()  # something for the read endpoints to find
    return make_token("fuzz")


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_causes_a_server_error(case, token):
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
