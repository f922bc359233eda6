"""GET /metrics counts workflows by status, their unfinished steps and the callbacks fired."""

from __future__ import annotations

import pytest

from queues.testing import run_jobs
from queues.workflows import chain, workflow

from . import tasks
from .test_metrics import scrape

pytestmark = pytest.mark.django_db


def test_workflows_are_counted_by_status_with_steps_and_callbacks(client):
    workflow(tasks.noop.s(), on_success=tasks.workflow_callback.s("ok")).enqueue()
    workflow(tasks.fail_permanently.s(), on_death=tasks.workflow_callback.s("death")).enqueue()
    run_jobs()
    workflow(chain(tasks.noop.s(), tasks.noop.s(), tasks.noop.s())).enqueue().cancel()
    workflow(chain(tasks.noop.s(), tasks.noop.s())).enqueue()
    samples = scrape(client)
    assert samples["taskweb_workflows"] == {
        (("status", "running"),): 1,
        (("status", "succeeded"),): 1,
        (("status", "failed"),): 1,
        (("status", "cancelled"),): 1,
    }
    assert samples["taskweb_workflow_steps_unfinished"] == {(): 2}
    assert samples["taskweb_workflow_callbacks_fired_total"] == {
        (("callback", "success"),): 1,
        (("callback", "complete"),): 0,
        (("callback", "death"),): 1,
    }
