"""Taskweb's settings and their defaults, read lazily so tests can override them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "QUEUES_AUTO_CREATE": False,
    "QUEUES_HEARTBEAT_INTERVAL": 5.0,  # seconds between worker heartbeats
    "QUEUES_LOST_AFTER_HEARTBEATS": 3,  # silent this many heartbeats -> lost
    "QUEUES_RETRY_BASE": 2.0,  # seconds; delay = min(base * 2**(n-1), cap) +- jitter
    "QUEUES_RETRY_CAP": 300.0,
    "QUEUES_RETRY_JITTER": 0.1,  # fraction of the delay
    "QUEUES_DEAD_RETENTION_DAYS": 30,
    "QUEUES_PRUNE_BATCH": 500,
    "QUEUES_PRUNE_INTERVAL": 60.0,
    "QUEUES_LISTEN": True,  # PostgreSQL LISTEN/NOTIFY; off for transaction-mode poolers
    "QUEUES_POLL_INTERVAL": 1.0,  # fallback poll when LISTEN is on
    "QUEUES_POLL_MIN": 0.02,  # SQLite / poll-only: back-off starts here...
    "QUEUES_POLL_MAX": 0.2,  # ...and stops growing here
    "QUEUES_SHUTDOWN_GRACE": 30.0,
    # Circuit breaker per task: off while the ratio is None. When on, a task whose
    # failed share of at least MIN_CALLS attempts in WINDOW seconds reaches the
    # ratio is not claimed for COOLDOWN seconds, then one probe job decides.
    "QUEUES_CIRCUIT_FAILURE_RATIO": None,
    "QUEUES_CIRCUIT_MIN_CALLS": 20,
    "QUEUES_CIRCUIT_WINDOW": 60.0,
    "QUEUES_CIRCUIT_COOLDOWN": 30.0,
    "QUEUES_AUTOSCALE_IDLE": 30.0,  # seconds a child may idle before --autoscale stops it
    "QUEUES_METRICS_TOKEN": "",  # when set, /metrics wants "Authorization: Bearer <token>"
    "QUEUES_API_MAX_BODY": 1024 * 1024,  # bytes; larger REST API bodies get 413
    "QUEUES_WEBHOOK_SECRET": "",  # HMAC key for completion webhooks; none means no callbacks
    "QUEUES_WEBHOOK_QUEUE": "webhooks",  # internal queue the deliveries run on
    "QUEUES_WEBHOOK_TIMEOUT": 10.0,  # seconds per delivery attempt
    "QUEUES_PROTOCOL_MAX_LINE": 64 * 1024,  # bytes per TCP protocol line
    "QUEUES_PROTOCOL_LEASE": 30.0,  # seconds a TCP client holds a dequeued job
    "QUEUES_PROTOCOL_AUTH_TIMEOUT": 10.0,  # seconds a TCP client has to AUTH (when required)
    "QUEUES_PROTOCOL_IDLE_TIMEOUT": 300.0,  # seconds a TCP client may send nothing
    "QUEUES_PROTOCOL_MAX_CONNECTIONS": 500,  # TCP connections served at once
    # REST API sign-in with an identity provider's JWTs (queues/oidc.py): off until the
    # issuer, the audience and the JWKS URL are all set.
    "QUEUES_OIDC_ISSUER": "",
    "QUEUES_OIDC_AUDIENCE": "",
    "QUEUES_OIDC_JWKS_URL": "",
    "QUEUES_OIDC_LEEWAY": 30.0,  # seconds of clock skew allowed on exp, nbf and iat
    "QUEUES_OIDC_USER_CLAIM": "preferred_username",  # the claim naming the user...
    "QUEUES_OIDC_USER_FIELD": "username",  # ...matched to this user field ("email": case-insensitive)
    "QUEUES_OIDC_ROLES_CLAIM": "roles",  # a dotted path reaches nested claims: realm_access.roles
    "QUEUES_OIDC_ROLES": {"taskweb-read": "read", "taskweb-operate": "operate", "taskweb-admin": "admin"},
    "QUEUES_OIDC_CREATE_USERS": "",  # a group name: unknown users are created in it; empty: refused
    # Payload encryption (queues.encryption): the environment variable holding the Fernet
    # keys (comma-separated, the first encrypts), and whether every job is encrypted.
    "QUEUES_ENCRYPTION_KEYS_ENV": "TASKWEB_PAYLOAD_KEYS",
    "QUEUES_ENCRYPT_ALL": False,
}


@dataclass(frozen=True)
class _Settings:
    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(name)
        return getattr(settings, name, DEFAULTS[name])


conf: Any = _Settings()
