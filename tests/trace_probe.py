"""Run by test_tracing in its own process: tracing needs a global tracer provider.

Enqueues one job with an in-memory OpenTelemetry exporter installed, runs it the
way a worker's child does, and prints the finished spans as JSON lines.
"""

from __future__ import annotations

import json
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskweb.settings")
django.setup()

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

from queues import lifecycle, values  # noqa: E402
from queues.runner import child  # noqa: E402
from tests import tasks  # noqa: E402, F401  (registers the task the probe enqueues by path)

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

job, _ = lifecycle.enqueue(values.JobSpec(task_path="tests.tasks.add", args=[1, 2]))
(claimed,) = lifecycle.claim("probe", None, 1)
report = child.run(child.Assignment(claimed, "probe"))
assert report.ok, report
print(json.dumps({"meta": job.meta}))
for span in exporter.get_finished_spans():
    parent = span.parent.span_id if span.parent else None
    print(
        json.dumps(
            {
                "name": span.name,
                "trace": span.context.trace_id,
                "span": span.context.span_id,
                "parent": parent,
            }
        )
    )
