"""One include mounts the console, API, health and metrics under any prefix (queues/urls.py)."""

from __future__ import annotations

import re

import pytest

from queues import auth_tokens

from .console_helpers import PAGES, PASSWORD, client_for, make_operator
from .factories import make_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def under_ops(settings) -> None:
    settings.ROOT_URLCONF = "tests.prefixed_urls"


def socket_url(html: str) -> str:
    return re.search(r'data-socket="([^"]*)"', html).group(1)


@pytest.mark.parametrize("page", PAGES)
def test_every_console_page_and_the_api_docs_answer_under_a_prefix(under_ops, page):
    job = make_job()
    assert client_for(make_operator()).get("/ops/" + page.format(job=job.id)).status_code == 200


def test_the_api_docs_under_a_prefix_read_the_schema_under_that_prefix(under_ops):
    html = client_for(make_operator()).get("/ops/api/docs").content.decode()
    assert "/ops/api/openapi.json" in html


def test_the_api_health_and_metrics_answer_under_a_prefix(under_ops):
    token = auth_tokens.create_token("prefix-test", make_operator()).plain
    client = client_for(None, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/ops/api/queues").status_code == 200
    assert client.get("/ops/health").status_code == 200
    assert client.get("/ops/metrics").status_code == 200


def test_links_on_a_page_under_a_prefix_stay_under_it(under_ops):
    html = client_for(make_operator()).get("/ops/jobs/").content.decode()
    links = re.findall(r'(?:href|hx-post|hx-get|action)="(/[^"]*)"', html)
    # /admin/ is the site's own link (templates/queues/base.html), mounted by the project.
    assert links and all(link.startswith(("/ops/", "/static/", "/admin/")) for link in links), links


def test_pages_under_a_prefix_open_their_socket_under_it(under_ops):
    html = client_for(make_operator()).get("/ops/").content.decode()
    assert socket_url(html).startswith("/ops/ws/console/?page=overview")


def test_anonymous_visitors_are_sent_to_the_consoles_own_login_page_under_the_prefix(under_ops):
    response = client_for(None).get("/ops/jobs/")
    assert response.status_code == 302 and response["Location"] == "/ops/login/?next=/ops/jobs/"


def test_the_login_page_under_a_prefix_logs_in_and_returns_to_the_console(under_ops):
    make_operator("alice")
    client = client_for(None)
    assert client.get("/ops/login/").status_code == 200
    response = client.post("/ops/login/", {"username": "alice", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/ops/"
    assert client.get("/ops/").status_code == 200


def test_the_socket_address_answers_plain_http_with_an_explanation(under_ops):
    response = client_for(make_operator()).get("/ops/ws/console/")
    assert response.status_code == 400 and b"WebSocket" in response.content


def test_the_sites_own_template_adds_its_admin_link_to_the_console():
    html = client_for(make_operator()).get("/").content.decode()
    nav = html.split("<nav>")[1].split("</nav>")[0]
    assert '<a href="/admin/">Admin</a>' in nav and "Dead letters" in nav
