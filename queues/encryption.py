"""Payload encryption at rest: a job's arguments, result and error texts stored as Fernet tokens.

Which jobs: those of a task defined with ``@task(encrypt=True)``, those enqueued on a queue
whose ``encrypt`` setting is on, or every job when ``QUEUES_ENCRYPT_ALL`` is on.

Keys come from the environment variable that ``QUEUES_ENCRYPTION_KEYS_ENV`` names
(``TASKWEB_PAYLOAD_KEYS`` by default): Fernet keys separated by commas. The first key
encrypts; every key decrypts (``MultiFernet``), so a new key goes first, the old one stays
until ``taskctl keys rotate`` has re-encrypted the stored payloads under the new one.

How an encrypted job is stored, so that every column keeps its JSON type and nothing
else in Taskweb has to know (the claim, the quarantine, the pruner read it as any job):

- ``args`` is one sealed text holding ``{"args": [...], "kwargs": {...}}``; ``kwargs`` is ``{}``;
- ``result`` is one sealed text holding the result's JSON;
- attempt and dead-letter error messages and tracebacks, and the job's ``last_error``
  after its error type, are sealed texts;
- ``meta["encrypted"]`` is the id of the key that sealed them (for rotation and pages).

A sealed text is ``taskweb:fernet:<key id>:<Fernet token>``; the key id is the first
8 hex digits of the key's SHA-256, which names the key without revealing it.

The worker's parent passes sealed arguments to the child as they are; only the child that
runs the job opens them (``run_opened``), and it seals what it reports back.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from .conf import conf
from .exceptions import InvalidJob, NonRetryable

PREFIX = "taskweb:fernet:"
SEALED = re.compile(r"taskweb:fernet:([0-9a-f]{8}):([A-Za-z0-9_=-]+)")
HIDDEN = "🔒 encrypted"
"""What a viewer without ``queues.view_payloads`` sees in place of an encrypted payload."""
META_KEY = "encrypted"
SEARCH_NOTE = "{count} encrypted job(s) were not searched: their arguments are encrypted."


class PayloadKeyError(NonRetryable):
    """No key in the environment opens (or can seal) a job's payload: the variable is unset,
    holds a malformed key, or lacks the key the payload was sealed with. Never retried:
    another attempt with the same keys would fail the same way."""


class EncryptionUnavailable(InvalidJob):
    """A job that must be encrypted cannot be, because no key is configured; nothing is stored."""


@dataclass(frozen=True)
class Keys:
    """The configured keys: ``fernet`` seals with the first and opens with any; ``ids`` in order."""

    fernet: MultiFernet
    ids: tuple[str, ...]

    @property
    def current(self) -> str:
        return self.ids[0]


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:8]


def variable() -> str:
    return str(conf.QUEUES_ENCRYPTION_KEYS_ENV)


def keys() -> Keys:
    """The keys in the environment now, or PayloadKeyError saying what is wrong with them."""
    return _parse(variable(), os.environ.get(variable(), ""))


@lru_cache(maxsize=8)
def _parse(name: str, text: str) -> Keys:
    raw = [part.strip() for part in text.split(",") if part.strip()]
    if not raw:
        raise PayloadKeyError(f"no encryption key: the environment variable {name} is not set or empty")
    fernets = []
    for position, key in enumerate(raw, 1):
        try:
            fernets.append(Fernet(key))
        except ValueError:
            raise PayloadKeyError(
                f"the environment variable {name} holds a malformed key at position {position}: "
                "each key is 32 url-safe base64-encoded bytes (Fernet.generate_key())"
            ) from None
    return Keys(MultiFernet(fernets), tuple(key_id(key.encode()) for key in raw))


# --- sealing and opening --------------------------------------------------------------


def seal(text: str, with_keys: Keys | None = None) -> str:
    """``text`` as a sealed text, under the first key."""
    found = with_keys or keys()
    return f"{PREFIX}{found.current}:{found.fernet.encrypt(text.encode()).decode()}"


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and SEALED.fullmatch(value) is not None


def open_sealed(value: str, with_keys: Keys | None = None) -> str:
    """The plaintext of one sealed text, or PayloadKeyError naming the key it needs."""
    match = SEALED.fullmatch(value)
    if match is None:
        raise PayloadKeyError("the value is not a sealed payload")
    found = with_keys or keys()
    try:
        return found.fernet.decrypt(match.group(2).encode()).decode()
    except InvalidToken:
        raise PayloadKeyError(
            f"the payload was encrypted with key {match.group(1)}, which none of the "
            f"{len(found.ids)} key(s) in {variable()} ({', '.join(found.ids)}) opens"
        ) from None


def _each_sealed(text: str, change: Callable[[re.Match[str]], str]) -> str:
    return SEALED.sub(change, text) if text and PREFIX in text else text


def reseal_text(text: str, with_keys: Keys) -> str:
    """``text`` with every sealed part sealed again under the first key."""
    return _each_sealed(text, lambda m: seal(open_sealed(m.group(0), with_keys), with_keys))


def under_key(text: str, key: str) -> bool:
    """Whether every sealed part of ``text`` names ``key`` (nothing in it to re-encrypt)."""
    return all(match.group(1) == key for match in SEALED.finditer(text))


def sealed_like(args: Any, kwargs: Any, text: str) -> str:
    """``text`` about a job, sealed when the job's arguments are (e.g. a TCP client's NACK
    reason); "🔒 encrypted" in its place when no key can seal it."""
    if not text or not sealed_arguments(args, kwargs):
        return text
    try:
        return seal(text)
    except PayloadKeyError:
        return HIDDEN


def opened_text(text: str) -> str:
    """``text`` with every sealed part opened (PayloadKeyError if a key is missing)."""
    return _each_sealed(text, lambda m: open_sealed(m.group(0)))


def opened_result(value: Any) -> Any:
    """A stored result as the task returned it (PayloadKeyError if no key opens it)."""
    return json.loads(open_sealed(value)) if is_sealed(value) else value


# --- enqueue: which jobs, and their row ---------------------------------------------------


def wanted(task: Any, queue: Any) -> bool:
    """Whether a new job is stored encrypted: its task, its queue or the site asks for it."""
    return bool(getattr(task, "encrypt", False) or queue.encrypt or conf.QUEUES_ENCRYPT_ALL)


def seal_row(fields: dict[str, Any], task: Any, queue: Any) -> dict[str, Any]:
    """The column values of a new job (args, kwargs and meta as JSON text), sealed if wanted."""
    if not wanted(task, queue):
        return fields
    try:
        found = keys()
    except PayloadKeyError as exc:
        raise EncryptionUnavailable(
            f"The job must be stored encrypted (task {fields['task_path']!r} on queue {queue.name!r}), "
            f"but {exc}.",
            field="args",
        ) from None
    payload = f'{{"args": {fields["args"]}, "kwargs": {fields["kwargs"]}}}'
    meta = json.loads(fields["meta"])
    meta[META_KEY] = found.current
    return {
        **fields,
        "args": json.dumps([seal(payload, found)]),
        "kwargs": "{}",
        "meta": json.dumps(meta),
    }


def sealed_arguments(args: Any, kwargs: Any) -> bool:
    return isinstance(args, list) and len(args) == 1 and is_sealed(args[0]) and kwargs == {}


def open_arguments(args: list[Any], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """A job's arguments as the producer gave them (PayloadKeyError if no key opens them)."""
    if not sealed_arguments(args, kwargs):
        return args, kwargs
    payload = json.loads(open_sealed(args[0]))
    return payload["args"], payload["kwargs"]


# --- the child that runs a job ------------------------------------------------------------


def run_opened(assignment: Any, run: Callable[[Any], Any], fail: Callable[..., Any]) -> Any:
    """``run(assignment)`` with its arguments opened, and what its report says sealed again.

    Called in the worker's child, the one process that sees a payload in the clear (the
    parent only ever passes sealed text along). A payload no key opens fails the attempt for
    good: ``fail(assignment, PayloadKeyError(...), retryable=False)``; the child goes on.
    """
    if not sealed_arguments(assignment.args, assignment.kwargs):
        return run(assignment)
    try:
        args, kwargs = open_arguments(assignment.args, assignment.kwargs)
    except PayloadKeyError as exc:
        return fail(assignment, exc, retryable=False)
    report = run(assignment.with_arguments(args, kwargs))
    try:
        return _sealed_report(report)
    except PayloadKeyError as exc:  # the keys changed under the child: report nothing in the clear
        return fail(assignment, exc, retryable=False)


def _sealed_report(report: Any) -> Any:
    found = keys()
    return replace(
        report,
        result_json=None if report.result_json is None else json.dumps(seal(report.result_json, found)),
        error_message=seal(report.error_message, found) if report.error_message else "",
        traceback=seal(report.traceback, found) if report.traceback else "",
    )


# --- readers: the clear text for those who may see it, "encrypted" for the others -----------


def is_encrypted(job: Any) -> bool:
    return bool((job.meta or {}).get(META_KEY))


def _opened_or_note(value: str) -> str:
    try:
        return open_sealed(value)
    except PayloadKeyError as exc:
        return f"{HIDDEN} (cannot be decrypted here: {exc})"


def shown_text(text: str, reveal: bool) -> str:
    """``text`` with each sealed part opened (``reveal``) or replaced by "🔒 encrypted"."""
    if reveal:
        return _each_sealed(text, lambda m: _opened_or_note(m.group(0)))
    return _each_sealed(text, lambda m: HIDDEN)


def shown_result(value: Any, reveal: bool) -> Any:
    """A job's result: the value itself, "🔒 encrypted", or (``reveal``) the opened value."""
    if not is_sealed(value):
        return value
    if not reveal:
        return HIDDEN
    opened = _opened_or_note(value)
    return opened if opened.startswith(HIDDEN) else json.loads(opened)


def shown_arguments(args: Any, kwargs: Any, reveal: bool) -> tuple[Any, Any]:
    """A job's args and kwargs as a reader may see them (each "🔒 encrypted" when hidden)."""
    if not sealed_arguments(args, kwargs):
        return args, kwargs
    if not reveal:
        return HIDDEN, HIDDEN
    try:
        return open_arguments(args, kwargs)
    except PayloadKeyError as exc:
        note = f"{HIDDEN} (cannot be decrypted here: {exc})"
        return note, note


def search_note(encrypted_count: int) -> str | None:
    """What a search by arguments says about the encrypted jobs it could not look into."""
    return SEARCH_NOTE.format(count=encrypted_count) if encrypted_count else None
