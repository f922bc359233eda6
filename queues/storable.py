"""JSON that every supported database can store.

JSON allows what databases refuse: NaN and Infinity (not JSON to PostgreSQL), NUL
characters and unpaired surrogates (not text to PostgreSQL); text input may also nest
deeper than anything reads back (``bounds.MAX_DEPTH`` is the limit). Every entry point
(Python API, REST API, admin, taskctl, TCP) checks input here, so bad input is a
clear error up front, on every database alike, instead of a failure deep inside a
query on one of them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
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
    return stored(json.loads(text, parse_constant=_no_constants))


def stored(data: Any, normalize: Callable[[Any], Any] | None = None) -> Any:
    """``data`` as a JSON column gives it back: tuples become lists, keys become text.

    A value of any other type goes through ``normalize`` first if one is given (the
    Python API passes the Tasks API's own ``normalize_json``, so its refusals are the
    caller's errors); without one it is a TypeError. Raises Unstorable for what no
    database stores. A value read back from the database equals what this returns.
    """
    if isinstance(data, str):
        check_text(data)
        return data
    if data is None or isinstance(data, (bool, int)):
        return data
    if isinstance(data, float):
        return _finite(data)
    if isinstance(data, dict):
        return {_key(key, normalize): stored(value, normalize) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [stored(item, normalize) for item in data]
    if normalize is not None:
        return stored(normalize(data))
    raise TypeError(f"Object of type {type(data).__name__} is not JSON serializable")


def _finite(number: float) -> float:
    if not math.isfinite(number):
        raise Unstorable(f"{number!r} is not a JSON number (NaN and Infinity are not allowed)")
    return number


def _key(key: Any, normalize: Callable[[Any], Any] | None) -> str:
    """A dict key as JSON writes it (``json.dumps`` turns 1 into "1", True into "true")."""
    if isinstance(key, str):
        check_text(key)
        return key
    if isinstance(key, float):
        return json.dumps(_finite(key))
    if key is None or isinstance(key, (bool, int)):
        return json.dumps(key)
    if normalize is not None:
        return _key(normalize(key), None)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def check_text(text: str) -> None:
    if "\x00" in text:
        raise Unstorable("NUL characters are not allowed in text")
    try:
        text.encode()
    except UnicodeEncodeError:
        raise Unstorable("text must be valid Unicode (no unpaired surrogates)") from None
