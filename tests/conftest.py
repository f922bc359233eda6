from __future__ import annotations

import pytest

from .factories import make_queue


@pytest.fixture(autouse=True)
def default_queue(request: pytest.FixtureRequest) -> None:
    """Tests with database access start with the ``default`` queue that migrate creates.

    (Transactional tests flush every table afterwards, data migrations included.)
    """
    if request.node.get_closest_marker("django_db"):
        request.getfixturevalue("db" if not _transactional(request) else "transactional_db")
        make_queue("default")


def _transactional(request: pytest.FixtureRequest) -> bool:
    marker = request.node.get_closest_marker("django_db")
    return bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))
