"""Console pages: who sees them, what they show, and that user data is escaped."""

from __future__ import annotations

import json
from html import unescape

import pytest
from django.utils import timezone

from queues import lifecycle, values
from queues.console import paging
from queues.models import Job, MinuteStat, Worker

from .console_helpers import client_for, make_operator, make_user, make_viewer
from .factories import make_job, make_queue, start_claimed

pytestmark = pytest.mark.django_db

PAGES = ["/", "/queues/default/", "/jobs/", "/dead/", "/workers/"]


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(url):
    response = client_for(None).get(url)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.parametrize("url", PAGES)
def test_users_who_are_not_staff_are_refused(url):
    assert client_for(make_user("plain", staff=False)).get(url).status_code == 403


@pytest.mark.parametrize("url", PAGES)
def test_read_only_staff_see_every_page(url):
    assert client_for(make_viewer()).get(url).status_code == 200


def test_the_login_page_logs_a_staff_user_in():
    make_operator("alice")
    response = client_for(None).post("/login/", {"username": "alice", "password": "console-test-password"})
    assert response.status_code == 302 and response["Location"] == "/"


def test_the_overview_lists_each_queue_with_its_counts():
    make_job(queue="mail")
    make_job(queue="mail")
    html = client_for(make_operator()).get("/").content.decode()
    row = html.split('data-queue="mail"')[1].split("</tr>")[0]
    assert '<td data-count="queued">2</td>' in row


def test_the_overview_warns_of_a_backlog_no_worker_serves():
    make_job(queue="orphan")
    html = client_for(make_operator()).get("/").content.decode()
    assert "no live worker serves it" in html


def test_the_overview_chart_reads_the_per_minute_rollup():
    now = timezone.now().replace(second=0, microsecond=0)
    MinuteStat.objects.create(minute=now, queue_name="default", task_path="t", succeeded=7, failed=2)
    html = client_for(make_operator()).get("/").content.decode()
    series = json.loads(
        unescape(html.split('id="chart-data-overview" hidden data-series="')[1].split('"')[0])
    )
    assert (series["succeeded"][-1], series["failed"][-1]) == (7, 2)


def test_a_job_page_escapes_arguments():
    job = make_job(args=["<script>alert(1)</script>"])
    html = client_for(make_operator()).get(f"/jobs/{job.id}/").content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_job_page_shows_each_attempt_with_its_traceback():
    job = make_job()
    (claimed,) = start_claimed("w", None, 1)
    failed = values.Finished(
        claimed,
        "failed",
        job.enqueued_at,
        job.enqueued_at,
        error_type="RuntimeError",
        error_message="boom",
        traceback="Traceback (most recent call last):\n  <frame>",
        retryable=False,
    )
    lifecycle.finish("w", [failed])
    html = client_for(make_operator()).get(f"/jobs/{job.id}/").content.decode()
    assert 'id="attempt-1"' in html and "Traceback (most recent call last):\n  &lt;frame&gt;" in html


def test_an_unknown_job_is_404():
    assert client_for(make_operator()).get("/jobs/999999/").status_code == 404


def test_the_jobs_list_filters_by_queue_and_status():
    make_queue("mail")
    wanted = make_job(queue="mail")
    make_job(queue="default")
    lifecycle.cancel(make_job(queue="mail").id)
    html = client_for(make_operator()).get("/jobs/?queue=mail&status=queued").content.decode()
    assert f'id="job-{wanted.id}-status"' in html and html.count('class="status status-') == 1


def test_the_jobs_list_searches_argument_text():
    wanted = make_job(args=["invoice-4711"])
    make_job(args=["other"])
    html = client_for(make_operator()).get("/jobs/?q=4711").content.decode()
    assert html.count('class="status status-') == 1 and f'id="job-{wanted.id}-status"' in html


def test_the_jobs_list_pages_by_id_without_offsets():
    ids = [make_job().id for _ in range(5)]
    client = client_for(make_operator())
    first = paging.keyset(Job.objects.all(), None, None, size=2)
    assert [job.id for job in first.items] == ids[:-3:-1] and first.older == ids[-2]
    html = client.get(f"/jobs/?before={ids[1]}").content.decode()
    assert f'id="job-{ids[0]}-status"' in html and f'id="job-{ids[1]}-status"' not in html


def test_the_socket_url_carries_the_page_filters_range_and_newest_id_but_no_rows():
    older, newer = make_job(), make_job()
    make_job(queue="mail")
    html = client_for(make_operator()).get("/jobs/?queue=default").content.decode()
    address = f"page=jobs&amp;queue=default&amp;oldest={older.id}&amp;newest={newer.id}"
    assert f'data-socket="/ws/console/?{address}&amp;as_of={newer.id + 1}"' in html


def test_a_later_page_of_a_list_counts_no_new_rows():
    job = make_job()
    html = client_for(make_operator()).get(f"/jobs/?before={job.id + 1}").content.decode()
    assert f'data-socket="/ws/console/?page=jobs&amp;oldest={job.id}&amp;newest={job.id}"' in html


def test_a_filter_no_page_would_write_is_named_and_not_applied():
    make_job()
    html = client_for(make_operator()).get("/jobs/?status=sleeping").content.decode()
    assert "&#x27;sleeping&#x27; is not a status" in html and html.count('class="status status-') == 1


def test_read_only_staff_get_no_action_buttons():
    job = make_job()
    html = client_for(make_viewer()).get(f"/jobs/{job.id}/").content.decode()
    assert "hx-post" not in html.split("<main>")[1]


def test_the_workers_page_lists_live_workers():
    lifecycle.register_worker(Worker(id="host-1-123", hostname="host-1", pid=123, concurrency=4))
    html = client_for(make_operator()).get("/workers/").content.decode()
    assert 'data-worker="host-1-123"' in html and "<td>host-1</td>" in html


def test_the_workers_page_shows_reserved_jobs_apart_from_running_ones():
    lifecycle.register_worker(Worker(id="host-1-123", hostname="host-1", pid=123, concurrency=1))
    make_job(), make_job(), make_job()
    start_claimed("host-1-123", None, 1)
    lifecycle.claim("host-1-123", None, 2)
    html = client_for(make_operator()).get("/workers/").content.decode()
    assert "<th>Reserved</th><th>Running</th>" in html
    row = html.split('data-worker="host-1-123"')[1].split("</tr>")[0]
    assert "<td>2</td>\n        <td>1</td>" in row


def test_the_overview_counts_reserved_jobs():
    make_job()
    lifecycle.claim("w", None, 1)
    html = client_for(make_operator()).get("/").content.decode()
    assert '<td data-count="reserved">1</td>' in html


@pytest.mark.parametrize("url", ["/queues/%00/", "/queues/a%00b/pause", "/circuits/%00/close"])
def test_a_url_naming_what_cannot_exist_is_404(url):
    assert client_for(make_operator()).get(url).status_code == 404
