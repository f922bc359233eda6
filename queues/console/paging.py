"""Keyset pagination by id: each page is an index range scan, never an OFFSET walk."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

PAGE_SIZE = 50


@dataclass
class Page:
    items: list[Any]
    newer: int | None  # pass as ?after= to see the page above
    older: int | None  # pass as ?before= to see the page below


def _cursor(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def keyset(
    rows: QuerySet, before: str | None, after: str | None, size: int = PAGE_SIZE, key: str = "id"
) -> Page:
    """Newest first. ``before``/``after`` are ids from the previous page's edges."""
    if (start := _cursor(after)) is not None:
        items = list(rows.filter(**{f"{key}__gt": start}).order_by(key)[: size + 1])
        more_newer = len(items) > size
        items = items[:size][::-1]
        return Page(
            items, getattr(items[0], key) if more_newer else None, getattr(items[-1], key) if items else None
        )
    if (end := _cursor(before)) is not None:
        rows = rows.filter(**{f"{key}__lt": end})
    items = list(rows.order_by(f"-{key}")[: size + 1])
    more_older = len(items) > size
    items = items[:size]
    newer = getattr(items[0], key) if end is not None and items else None
    return Page(items, newer, getattr(items[-1], key) if more_older else None)
