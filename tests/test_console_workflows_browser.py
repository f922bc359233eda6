"""A workflow's console page in a real headless Chromium, while a real worker runs its steps."""

from __future__ import annotations

import pytest

from queues.models import Job
from queues.states import Status
from queues.workflows import chain, workflow

from . import tasks
from .browser import chromium_path, log_in
from .console_helpers import PASSWORD, make_operator
from .processes import WorkerProcess, wait_until
from .test_console_browser import LIVE, browser, page, server, violations, workers  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.process,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed (make browser)"),
]


def test_a_dead_step_shows_live_and_retrying_it_lets_the_workflow_finish(page, server, workers, tmp_path):  # noqa: F811
    make_operator("alice")
    fixed = tmp_path / "fixed"
    run = workflow(
        chain(
            tasks.fail_until_file_exists.s(str(fixed)).set(name="risky"),
            tasks.step_log.s("after").set(name="after"),
        )
    ).enqueue()
    log_in(page, server.url, "alice", PASSWORD)
    page.goto(f"/workflows/{run.id}/")
    page.wait_for_selector('tr[data-step="after"] .status-blocked')
    workers.append(WorkerProcess("--concurrency", "1", log_dir=tmp_path))
    wait_until(lambda: Job.objects.get(id=run.job_ids["risky"]).status == Status.DEAD, timeout=60)
    page.wait_for_selector('tr[data-step="risky"] .status-dead', timeout=LIVE)
    page.wait_for_selector('tr[data-step="after"] .status-cancelled', timeout=LIVE)
    assert "died" in page.inner_text('tr[data-step="after"]')

    fixed.touch()
    page.click('tr[data-step="risky"] button:has-text("Retry")')
    page.wait_for_selector("#workflow-status.status-succeeded", timeout=LIVE)
    wait_until(lambda: Job.objects.get(id=run.job_ids["after"]).status == Status.SUCCEEDED)
