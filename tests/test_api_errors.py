"""Every answer under /api/ is JSON, and the OpenAPI document lists every error."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import path

from queues.api.errors import JsonAPI

from .api import ApiClient

pytestmark = pytest.mark.django_db

broken = JsonAPI(urls_namespace="broken")


@broken.get("/fails")
def fails(request):
    raise RuntimeError("a bug")


urlpatterns = [path("broken/", broken.urls)]  # this module is also the URLconf of one test


@pytest.fixture
def api() -> ApiClient:
    return ApiClient()


def test_an_unknown_url_under_api_is_a_json_404(api):
    response = api.get("/no-such-thing")
    assert (response.status_code, response["Content-Type"]) == (404, "application/json")
    assert "/api/no-such-thing" in response.json()["detail"]


def test_a_method_a_route_does_not_take_is_a_json_405_naming_the_allowed_ones(api):
    response = api.delete("/jobs")
    allowed = set(response["Allow"].split(", "))
    assert (response.status_code, response["Content-Type"], allowed) == (
        405,
        "application/json",
        {"GET", "POST"},
    )
    assert "DELETE is not allowed" in response.json()["detail"]


def test_an_unexpected_exception_is_a_json_500_and_is_logged(settings, caplog):
    settings.ROOT_URLCONF = __name__
    response = Client(raise_request_exception=False).get("/broken/fails")
    assert (response.status_code, response.json()) == (
        500,
        {"detail": "An unexpected error occurred; it has been logged."},
    )
    assert "a bug" in caplog.text


def test_every_operation_documents_the_errors_it_may_answer(api):
    paths = api.get("/openapi.json").json()["paths"]
    for operations in paths.values():
        for operation in operations.values():
            assert {"400", "401", "403", "413", "500"} <= set(operation["responses"])


def test_the_openapi_document_names_each_status_once(api):
    def refuse_duplicates(pairs: list) -> dict:
        keys = [key for key, _ in pairs]
        assert len(keys) == len(set(keys)), keys
        return dict(pairs)

    json.loads(api.get("/openapi.json").content, object_pairs_hook=refuse_duplicates)


def test_operations_with_an_id_or_name_in_the_url_document_404(api):
    operation = api.get("/openapi.json").json()["paths"]["/api/jobs/{job_id}"]["get"]
    assert operation["responses"]["404"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorOut"
    }


def test_operations_that_may_conflict_document_409(api):
    assert "409" in api.get("/openapi.json").json()["paths"]["/api/jobs/{job_id}/cancel"]["post"]["responses"]


def test_the_error_schema_has_a_detail_and_field_errors(api):
    schemas = api.get("/openapi.json").json()["components"]["schemas"]
    assert set(schemas["ErrorOut"]["properties"]) == {"detail", "errors"}
    assert set(schemas["FieldError"]["properties"]) == {"field", "message"}


def test_a_query_parameter_given_twice_is_refused_naming_it():
    api = ApiClient()
    response = api.client.get("/api/jobs?queue=default&queue=%F3%AD%AA%8A", headers=api._headers())
    assert response.status_code == 400 and response.json()["errors"][0]["field"] == "queue"
