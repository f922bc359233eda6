"""A Django test client that speaks JSON to the REST API with a real token."""

from __future__ import annotations

import json
from typing import Any

from django.test import Client

from .factories import make_token


class ApiClient:
    def __init__(self, token: str | None = None) -> None:
        self.token = token if token is not None else make_token()
        self.client = Client()

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(f"/api{path}", params, headers=self._headers())

    def send(self, method: str, path: str, body: Any = None, raw: str | bytes | None = None) -> Any:
        data = raw if raw is not None else ("" if body is None else json.dumps(body))
        call = getattr(self.client, method)
        return call(f"/api{path}", data=data, content_type="application/json", headers=self._headers())

    def post(self, path: str, body: Any = None, raw: str | bytes | None = None) -> Any:
        return self.send("post", path, body, raw)

    def patch(self, path: str, body: Any = None) -> Any:
        return self.send("patch", path, body)

    def delete(self, path: str) -> Any:
        return self.send("delete", path)


def fields(response: Any) -> list[str]:
    """The fields a 400 answer blames."""
    return [error["field"] for error in response.json()["errors"]]
