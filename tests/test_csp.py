"""The Content-Security-Policy every page is served with, and templates that live within it.

The browser side (no violation while the live console works) is in test_console_browser.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .console_helpers import client_for, make_operator
from .factories import make_job

pytestmark = pytest.mark.django_db
TEMPLATES = Path(__file__).resolve().parent.parent / "queues" / "templates"
STRICT = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "frame-ancestors": "'none'",
}
SIGNED_IN_PAGES = [
    "/",
    "/queues/default/",
    "/jobs/",
    "/jobs/{job}/",
    "/dead/",
    "/workers/",
    "/schedules/",
    "/api/docs",
    "/admin/",
    "/admin/queues/job/",
    "/admin/queues/job/add/",
]


def policy(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())


@pytest.mark.parametrize("url", SIGNED_IN_PAGES)
def test_every_page_is_served_with_the_strict_policy(url):
    job = make_job()
    response = client_for(make_operator()).get(url.format(job=job.pk))
    assert response.status_code == 200
    assert {key: policy(response).get(key) for key in STRICT} == STRICT


@pytest.mark.parametrize("url", ["/login/", "/admin/login/"])
def test_the_login_pages_are_served_with_the_strict_policy(url):
    response = client_for(None).get(url)
    assert {key: policy(response).get(key) for key in STRICT} == STRICT


def test_the_policy_allows_no_inline_code_or_eval():
    header = client_for(None).get("/login/")["Content-Security-Policy"]
    assert "unsafe-inline" not in header and "unsafe-eval" not in header


def test_the_api_docs_load_swagger_ui_from_the_site_not_a_cdn():
    html = client_for(make_operator()).get("/api/docs").content.decode()
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert scripts and all(src.startswith("/static/") for src in scripts)


@pytest.mark.parametrize("template", sorted(TEMPLATES.rglob("*.html")), ids=lambda path: path.name)
def test_no_console_template_has_inline_scripts_handlers_or_style_attributes(template):
    html = template.read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script>"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert not re.search(r"\sstyle\s*=", html), "style attribute"
    assert not re.search(r"\shx-on", html), "hx-on evaluates code"
