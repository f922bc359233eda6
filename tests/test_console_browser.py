"""The console in a real headless Chromium, served by a real daphne, with real workers.

Every change the page shows here was made by another process (this test process or a
runworker) and reached the browser over the page's WebSocket, without a reload.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from queues.models import Job, Queue
from queues.states import Status

from .browser import DaphneProcess, chromium, chromium_path, log_in
from .console_helpers import PASSWORD, make_operator, make_viewer
from .factories import make_job, make_queue
from .processes import WorkerProcess, wait_until

pytestmark = [
    pytest.mark.browser,
    pytest.mark.process,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(chromium_path() is None, reason="Debian's chromium is not installed (make browser)"),
]

LIVE = 15_000  # ms a change may take to show: far above the 1 s it needs, for slow CI machines


@pytest.fixture(scope="module")
def server(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[DaphneProcess]:
    with django_db_blocker.unblock():
        daphne = DaphneProcess(tmp_path_factory.mktemp("daphne"))
    yield daphne
    daphne.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # are still plain synchronous code.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with chromium() as launched:
        yield launched
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


# Every page reports Content-Security-Policy violations to the test, across navigations.
REPORT_VIOLATIONS = """document.addEventListener("securitypolicyviolation", (event) =>
    window.reportViolation(
        `${event.violatedDirective} blocked ${event.blockedURI || "inline"} in ${location.pathname}`));"""


@pytest.fixture
def violations() -> list[str]:
    return []


@pytest.fixture
def page(browser, server, violations):
    context = browser.new_context(base_url=server.url)
    context.expose_function("reportViolation", lambda text: violations.append(text))
    context.add_init_script(REPORT_VIOLATIONS)
    page = context.new_page()
    yield page
    context.close()
    assert violations == [], "the page broke its Content-Security-Policy"


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop()


def test_an_operator_logs_in_and_sees_the_queues(page, server):
    make_operator("alice")
    log_in(page, server.url, "alice", PASSWORD)
    assert page.locator("h1").inner_text() == "Queues"
    assert page.locator('#queue-table tr[data-queue="default"]').count() == 1


def test_overview_counts_change_live_when_another_process_enqueues(page, server):
    make_operator("alice")
    log_in(page, server.url, "alice", PASSWORD)
    page.evaluate("window.notReloaded = true")
    for _ in range(3):
        make_job()
    page.wait_for_selector(
        "#queue-table tr[data-queue=default] td[data-count=queued]:text-is('3')", timeout=LIVE
    )
    assert page.evaluate("window.notReloaded") is True


def test_a_dead_job_shows_its_traceback_and_replays_to_success(page, server, workers, tmp_path):
    make_operator("alice")
    fixed = tmp_path / "fixed"
    job = make_job("tests.tasks.fail_until_file_exists", args=[str(fixed)])
    workers.append(WorkerProcess("--concurrency", "1", log_dir=tmp_path))
    wait_until(lambda: Job.objects.get(id=job.id).status == Status.DEAD, timeout=60)

    log_in(page, server.url, "alice", PASSWORD)
    page.goto("/dead/")
    page.click(f'#dead-table a[href="/jobs/{job.id}/"]')
    page.click("#attempt-1 summary")
    traceback = page.locator("#attempt-1 pre.traceback")
    assert "Traceback (most recent call last)" in traceback.inner_text()
    assert "is missing" in traceback.inner_text()

    fixed.touch()
    page.goto("/dead/")
    page.click(f'#dead-table tr[data-job="{job.id}"] button:has-text("Replay")')
    page.wait_for_selector(f"#job-{job.id}-status.status-succeeded", timeout=LIVE)
    assert Job.objects.get(id=job.id).result == "fixed"


def test_pausing_a_queue_stops_workers_taking_its_jobs(page, server, workers, tmp_path):
    make_operator("alice")
    make_queue("slow")
    make_queue("fast")
    workers.append(WorkerProcess("--queues", "slow,fast", "--concurrency", "1", log_dir=tmp_path))
    log_in(page, server.url, "alice", PASSWORD)
    page.goto("/queues/slow/")
    page.click("#queue-controls button:has-text('Pause')")
    page.wait_for_selector("#queue-live-state [data-state=paused]", timeout=LIVE)
    assert Queue.objects.get(name="slow").paused

    held = make_job(queue="slow", priority=100)
    passed = make_job(queue="fast", priority=-100)
    # The worker takes the lower-priority job of the running queue and leaves the other.
    wait_until(lambda: Job.objects.get(id=passed.id).status == Status.SUCCEEDED, timeout=60)
    assert Job.objects.get(id=held.id).status == Status.QUEUED

    page.click("#queue-controls button:has-text('Resume')")
    page.wait_for_selector("#queue-counts strong[data-count=succeeded]:text-is('1')", timeout=LIVE)
    assert Job.objects.get(id=held.id).status == Status.SUCCEEDED


def test_a_read_only_user_sees_but_cannot_act(page, server):
    make_viewer("reader")
    job = make_job()
    log_in(page, server.url, "reader", PASSWORD)
    page.goto(f"/jobs/{job.id}/")
    assert page.locator("#job-actions button").count() == 0
    page.goto("/queues/default/")
    assert page.locator("#queue-controls button").count() == 0
    # A hand-made request with a valid CSRF token is still refused on the server.
    status = page.evaluate(
        """async (url) => {
            const token = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRFToken'];
            const response = await fetch(url, {method: 'POST', headers: {'X-CSRFToken': token}});
            return response.status;
        }""",
        f"/jobs/{job.id}/cancel",
    )
    assert status == 403 and Job.objects.get(id=job.id).status == Status.QUEUED


def test_a_hidden_tab_closes_its_socket_and_catches_up_when_shown(page, server):
    make_operator("alice")
    log_in(page, server.url, "alice", PASSWORD)
    set_hidden = """(hidden) => {
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
        document.dispatchEvent(new Event('visibilitychange'));
    }"""
    page.evaluate(set_hidden, True)
    assert page.locator("#live [ws-connect]").count() == 0
    make_job()
    make_job()
    page.evaluate(set_hidden, False)
    page.wait_for_selector(
        "#queue-table tr[data-queue=default] td[data-count=queued]:text-is('2')", timeout=LIVE
    )


def test_the_console_fits_a_phone_screen(browser, server):
    make_operator("alice")
    context = browser.new_context(base_url=server.url, viewport={"width": 390, "height": 844})
    page = context.new_page()
    log_in(page, server.url, "alice", PASSWORD)
    for url in ("/", "/jobs/", "/dead/", "/workers/"):
        page.goto(url)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), url
    context.close()


def test_the_dark_theme_follows_the_system_setting(browser, server):
    make_operator("alice")
    context = browser.new_context(base_url=server.url, color_scheme="dark")
    page = context.new_page()
    log_in(page, server.url, "alice", PASSWORD)
    background = page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
    assert background == "rgb(15, 18, 23)"
    context.close()


def test_new_jobs_wait_behind_a_show_control_on_the_jobs_list(page, server):
    make_operator("alice")
    shown = make_job()
    log_in(page, server.url, "alice", PASSWORD)
    page.goto("/jobs/")
    page.wait_for_selector("#live-state[data-state=live]", timeout=LIVE)
    page.check(f'input[name=ids][value="{shown.id}"]')
    make_job()
    make_job()
    page.wait_for_selector("#jobs-new:text-is('2 new — show')", timeout=LIVE)
    assert page.locator("#jobs-table tbody tr").count() == 1  # the list itself did not move
    assert page.is_checked(f'input[name=ids][value="{shown.id}"]')  # nor lose the selection
    page.click("#jobs-new")
    page.wait_for_selector("#jobs-table tbody tr >> nth=2")


def test_the_live_console_works_within_its_content_security_policy(page, server, violations):
    make_operator("alice")
    job = make_job()
    log_in(page, server.url, "alice", PASSWORD)  # the socket connected: "live"
    page.wait_for_selector("#queue-table tr[data-queue=default] td[data-count=queued]:text-is('1')")
    page.wait_for_selector(".chart .uplot canvas", timeout=LIVE)  # the chart drew
    make_job()
    page.wait_for_selector(
        "#queue-table tr[data-queue=default] td[data-count=queued]:text-is('2')", timeout=LIVE
    )  # a live update arrived over the socket
    policy = page.goto("/queues/default/").headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    page.click("#queue-controls button:has-text('Pause')")  # an htmx action
    page.wait_for_selector("#queue-live-state [data-state=paused]", timeout=LIVE)
    page.click("#queue-controls button:has-text('Purge')")
    page.wait_for_selector("#purge-confirm button:has-text('Purge 2')")
    page.click("#purge-confirm button:has-text('Never mind')")
    assert page.locator("#purge-confirm button").count() == 0
    page.goto(f"/jobs/{job.id}/")
    assert page.locator("#job-live progress").get_attribute("value") == "0"
    page.goto("/api/docs")
    page.wait_for_selector("#swagger-ui .info", timeout=LIVE)  # Swagger UI ran from the site's files
    page.goto("/admin/queues/job/")
    page.wait_for_selector("#result_list")
    assert violations == []


def test_deleting_ticked_jobs_asks_first(page, server):
    make_operator("alice")
    job = make_job()
    log_in(page, server.url, "alice", PASSWORD)
    page.goto("/jobs/")
    page.check(f'input[name=ids][value="{job.id}"]')
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.click("#bulk-form button[value=delete]")
    page.wait_for_timeout(500)
    assert Job.objects.filter(id=job.id).exists()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#bulk-form button[value=delete]")
    wait_until(lambda: not Job.objects.filter(id=job.id).exists(), timeout=30)


def test_logging_out_in_another_tab_takes_this_tab_offline(page, server):
    make_viewer("reader")
    log_in(page, server.url, "reader", PASSWORD)
    other_tab = page.context.new_page()
    other_tab.goto("/")
    other_tab.click("form.logout button")
    other_tab.wait_for_url("**/login/**")
    page.wait_for_selector("#live-state[data-state=offline]", timeout=LIVE)
