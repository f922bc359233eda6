"""Cursor pagination, newest first: the cursor is the id the next page starts below.

Stable under inserts (a new row never shifts a page, unlike offsets) and one index
range scan per page however deep the client goes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from django.db.models import Model, QuerySet

from ..exceptions import InvalidJob

M = TypeVar("M", bound=Model)


def page(rows: QuerySet[M], cursor: str | None, limit: int) -> tuple[list[M], str | None]:
    if cursor:
        if not cursor.isdigit() or len(cursor) > 18:
            raise InvalidJob(f"cursor {cursor!r} is not a cursor this API gave out.", "cursor")
        rows = rows.filter(pk__lt=int(cursor))
    items = list(rows.order_by("-pk")[: limit + 1])
    more = len(items) > limit
    items = items[:limit]
    return items, str(items[-1].pk) if more else None


class Paging(Protocol):
    """The query parameters every list takes: where the page starts, and how long it is."""

    cursor: str | None
    limit: int


def listing(rows: QuerySet[M], paging: Paging, show: Callable[[M], Any]) -> dict[str, Any]:
    """One page of ``rows`` as every list answers it: each row shown, and the next cursor."""
    items, next_cursor = page(rows, paging.cursor, paging.limit)
    return {"items": [show(row) for row in items], "next_cursor": next_cursor}
