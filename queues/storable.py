"""JSON that every supported database can store.

JSON allows what databases refuse: NaN and Infinity (not JSON to PostgreSQL), NUL
characters and unpaired surrogates (not text to PostgreSQL), and nesting so deep
that Python cannot read it back (``bounds.MAX_DEPTH`` is the limit). Every entry point
(API, admin, taskctl, TCP) checks input here, so bad input is a clear error up
front instead of a failure deep inside a query.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from . import bounds


class Unstorable(ValueError):
    """Input that is valid enough to parse but cannot be stored."""


def _no_constants(name: str) -> Any:
    raise Unstorable(f"{name} is not a JSON number")


def loads(text: str | bytes, depth: int = bounds.MAX_DEPTH) -> Any:
    """``json.loads`` that refuses NaN/Infinity and text no database stores.

    Raises Unstorable for those, ValueError (JSONDecodeError) for text that is not JSON.
    The nesting is counted before parsing, so no parser ever recurses into a deep one.
    """
    if bounds.json_depth(text) > depth:
        raise Unstorable(f"arrays and objects nest more than {depth} levels deep")
    data = json.loads(text, parse_constant=_no_constants)
    check(data)
    return data


def check(data: Any) -> None:
    for text in _strings(data):
        check_text(text)


def check_text(text: str) -> None:
    if "\x00" in text:
        raise Unstorable("NUL characters are not allowed in text")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise Unstorable("text must be valid Unicode (no unpaired surrogates)") from None


def _strings(data: Any) -> Iterator[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield key
            yield from _strings(value)
    elif isinstance(data, list):
        for item in data:
            yield from _strings(item)
