"""Completion webhooks: tell a job's ``callback_url`` how the job ended.

A delivery is itself a job (task ``queues.tasks.deliver_webhook``) on the internal
queue ``QUEUES_WEBHOOK_QUEUE``, enqueued by the lifecycle in the same transaction that
records the final outcome. So a slow or dead receiver never holds up the worker
that ran the job, a delivery exists exactly when the outcome committed, and failed
deliveries are retried with the usual back-off and end in the dead letters, where
an operator can see and replay them like any other job.

Each POST is signed: ``X-Taskweb-Signature: t=<unix time>,v1=<hex>`` where hex is
HMAC-SHA256 with ``QUEUES_WEBHOOK_SECRET`` over ``"<t>.<body>"``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from .conf import conf
from .encryption import shown_result, shown_text
from .exceptions import InvalidJob, NonRetryable
from .lifecycle.enqueue import enqueue_many
from .models import Job, Queue
from .values import JobSpec

DELIVER_TASK = "queues.tasks.deliver_webhook"
DELIVERY_ATTEMPTS = 8
_url_validator = URLValidator(schemes=["http", "https"])


def validate_callback_url(url: str) -> str:
    """The URL, if callbacks are configured and it is an http(s) URL; else InvalidJob."""
    if not conf.QUEUES_WEBHOOK_SECRET:
        raise InvalidJob(
            "Completion webhooks are off: set QUEUES_WEBHOOK_SECRET to sign them.", "callback_url"
        )
    try:
        _url_validator(url)
    except ValidationError:
        raise InvalidJob(f"callback_url {url!r} is not an http(s) URL.", "callback_url") from None
    return url


def payload(job: Job, queue_name: str) -> dict[str, Any]:
    return {
        "event": "job.finished",
        "job": {
            "id": job.id,
            "queue": queue_name,
            "task": job.task_path,
            "status": job.status,
            "attempts": job.attempts,
            # An encrypted job's outcome leaves only as "🔒 encrypted" (queues.encryption).
            "result": shown_result(job.result, reveal=False),
            "error": shown_text(job.last_error, reveal=False) or None,
            "enqueued_at": job.enqueued_at.isoformat(),
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        },
    }


def enqueue_deliveries(job_ids: Iterable[int]) -> int:
    """Enqueue one delivery per finished job that asked for a callback; call inside the
    transaction that finished them. Returns how many were enqueued."""
    ids = list(job_ids)
    if not ids:
        return 0
    jobs = list(Job.objects.filter(id__in=ids, meta__has_key="callback_url").select_related("queue"))
    if not jobs:
        return 0
    # The internal queue appears on first use, like a table created lazily.
    Queue.objects.get_or_create(name=conf.QUEUES_WEBHOOK_QUEUE)
    enqueue_many(
        [
            JobSpec(
                task_path=DELIVER_TASK,
                args=[job.meta["callback_url"], json.dumps(payload(job, job.queue.name))],
                queue=conf.QUEUES_WEBHOOK_QUEUE,
                max_attempts=DELIVERY_ATTEMPTS,
            )
            for job in jobs
        ]
    )
    return len(jobs)


def signature(body: str, timestamp: int, secret: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def deliver(url: str, body: str, delivery_id: str) -> int:
    """POST one signed delivery; returns the HTTP status or raises to have it retried."""
    secret = conf.QUEUES_WEBHOOK_SECRET
    if not secret:
        raise NonRetryable("QUEUES_WEBHOOK_SECRET is not set; deliveries cannot be signed.")
    request = urllib.request.Request(
        url,
        data=body.encode(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "Taskweb-Webhook/1",
            "X-Taskweb-Delivery": delivery_id,
            "X-Taskweb-Signature": signature(body, int(time.time()), secret),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=conf.QUEUES_WEBHOOK_TIMEOUT) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        # A receiver that rejects the request outright will not change its mind on retry;
        # 408 and 429 ask us to come back later, 5xx may be passing.
        if 400 <= exc.code < 500 and exc.code not in (408, 429):
            raise NonRetryable(f"{url} answered {exc.code} {exc.reason}") from None
        raise RuntimeError(f"{url} answered {exc.code} {exc.reason}") from None
