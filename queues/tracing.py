"""Correlation carried in a job's ``meta``: the request id and, optionally, a trace.

When a job is enqueued, the request id bound in the log context (see
``queues.middleware``) is stored in ``meta["request_id"]``, so the job's log lines
can be tied to the request that caused it.

If OpenTelemetry is installed and a tracer provider is configured, enqueueing
also records a ``taskweb.enqueue`` span and stores its context in
``meta["trace"]`` (W3C trace context); the worker continues that trace with a
``taskweb.run`` span around the task. Without OpenTelemetry nothing of this runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from . import logs

try:
    from opentelemetry import propagate, trace
except ImportError:  # optional: tracing is simply off
    propagate = trace = None  # type: ignore[assignment]


def _tracer() -> Any:
    """A tracer once an application configured a provider; None costs nothing per job."""
    if trace is None or isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return None
    return trace.get_tracer("taskweb")


def enqueue_meta(meta: dict[str, Any], task_path: str, queue: str) -> dict[str, Any]:
    """``meta`` plus the current request id and trace context (what the caller set wins)."""
    extra: dict[str, Any] = {}
    if request_id := logs.current().get("request_id"):
        extra["request_id"] = request_id
    if (tracer := _tracer()) is not None:
        attributes = {"taskweb.task": task_path, "taskweb.queue": queue}
        with tracer.start_as_current_span(
            "taskweb.enqueue", kind=trace.SpanKind.PRODUCER, attributes=attributes
        ):
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
        if carrier:
            extra["trace"] = carrier
    return {**extra, **meta}


@contextmanager
def run_span(fields: dict[str, Any], read_meta: Callable[[], dict[str, Any]]) -> Iterator[None]:
    """A ``taskweb.run`` span continuing the enqueuer's trace, when tracing is on.

    ``read_meta`` gives the job's meta; it is only called when tracing is on.
    """
    tracer = _tracer()
    if tracer is None:
        yield
        return
    context = propagate.extract(read_meta().get("trace") or {})
    attributes = {f"taskweb.{name}": value for name, value in fields.items()}
    with tracer.start_as_current_span(
        "taskweb.run", context=context, kind=trace.SpanKind.CONSUMER, attributes=attributes
    ):
        yield
