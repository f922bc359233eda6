"""Optional OpenTelemetry: enqueue and execution become spans of one trace."""

from __future__ import annotations

import json

import pytest

from queues import tracing

from .factories import make_job
from .processes import run_python


@pytest.mark.django_db
def test_without_a_configured_tracer_provider_nothing_is_added_to_the_job():
    assert "trace" not in make_job().meta
    assert tracing.enqueue_meta({"a": 1}, "tests.tasks.noop", "default") == {"a": 1}


@pytest.mark.process
@pytest.mark.django_db(transaction=True)
def test_enqueue_and_run_are_spans_of_one_trace():
    pytest.importorskip("opentelemetry.sdk")
    probe = run_python("-m", "tests.trace_probe")
    assert probe.returncode == 0, probe.stderr
    first, *spans = [json.loads(line) for line in probe.stdout.splitlines()]
    by_name = {span["name"]: span for span in spans}
    enqueue, run = by_name["taskweb.enqueue"], by_name["taskweb.run"]
    assert first["meta"]["trace"]["traceparent"].startswith("00-")
    assert run["trace"] == enqueue["trace"]
    assert run["parent"] == enqueue["span"]
