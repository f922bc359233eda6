"""Template filters of the console: short ages, durations and rates, encrypted payloads."""

from __future__ import annotations

import json
from datetime import datetime

from django import template
from django.utils import timezone

from .. import encryption, offload

register = template.Library()


@register.filter
def seconds(value: float | None) -> str:
    """12.3 -> "12.3s", 75 -> "1m 15s", 7300 -> "2h 1m"."""
    if value is None:
        return "—"
    value = max(float(value), 0.0)
    if value < 10:
        return f"{value:.1f}s"
    if value < 60:
        return f"{value:.0f}s"
    minutes, secs = divmod(int(value), 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes}m"
    return f"{hours // 24}d {hours % 24}h"


@register.filter
def age(value: datetime | None, now: datetime | None = None) -> str:
    """How long ago ``value`` was, e.g. "3m 2s"."""
    if value is None:
        return "—"
    return seconds(((now or timezone.now()) - value).total_seconds())


@register.filter
def percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}" if value >= 0.01 or value == 0 else "<1%"


@register.filter
def get(mapping: dict, key: str):
    return mapping.get(key)


@register.filter
def pretty_json(value: object) -> str:
    """Indented JSON; the template escapes it like any other user data."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@register.simple_tag(takes_context=True)
def payload(context: template.Context, text: str) -> str:
    """An error text of an encrypted job: opened when the page's ``reveal`` is set (pages set it
    from ``rules.sees_payloads``, live fragments from their socket's user), "🔒 encrypted"
    otherwise. ``{% payload attempt.traceback as shown %}``."""
    return encryption.shown_text(text, bool(context.get("reveal")))


@register.simple_tag(takes_context=True)
def payload_result(context: template.Context, value: object) -> object:
    """A job's result, opened or "🔒 encrypted" as ``payload`` decides."""
    return encryption.shown_result(value, bool(context.get("reveal")))


@register.simple_tag(takes_context=True)
def stored(context: template.Context, job: object, part: str) -> dict | None:
    """Where a job's offloaded ``arguments`` or ``result`` is (storage, name, size), else None.
    ``hidden`` is "🔒 encrypted" for an encrypted job unless the page's ``reveal`` is set, as
    ``payload`` decides: its content is then neither shown nor offered for download.
    ``{% stored job "result" as where %}``."""
    found = offload.references(job)[part]
    if found is None:
        return None
    hidden = encryption.is_encrypted(job) and not context.get("reveal")
    return {**found, "hidden": encryption.HIDDEN if hidden else ""}
