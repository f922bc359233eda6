"""The demo's example tasks do real work when called."""

from __future__ import annotations

import pytest
from django.core import mail
from PIL import Image

from taskweb import tasks


def test_send_email_uses_djangos_email_backend(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert tasks.send_email.call("ada@example.com", "Hello", "Body") == {"to": "ada@example.com", "sent": 1}
    assert mail.outbox[0].subject == "Hello"


def test_resize_image_writes_a_thumbnail(tmp_path):
    source = tmp_path / "photo.png"
    Image.new("RGB", (800, 600), "teal").save(source)
    result = tasks.resize_image.call(str(source), 200, 200)
    assert result["size"] == [200, 150]
    with Image.open(result["path"]) as thumbnail:
        assert thumbnail.size == (200, 150)


def test_csv_stats_summarises_a_column(tmp_path):
    source = tmp_path / "sales.csv"
    source.write_text("region,amount\nnorth,10\nsouth,30\neast,n/a\nwest,20\n")
    stats = tasks.csv_stats.call(str(source), "amount")
    assert (stats["rows"], stats["skipped"], stats["sum"], stats["median"]) == (3, 1, 60.0, 20.0)


def test_csv_stats_refuses_a_column_without_numbers(tmp_path):
    source = tmp_path / "empty.csv"
    source.write_text("a\nx\n")
    with pytest.raises(ValueError, match="no numeric values"):
        tasks.csv_stats.call(str(source), "a")


def test_long_report_runs_its_steps():
    assert tasks.long_report.call(steps=3, step_seconds=0) == "report of 3 steps done"


def test_flaky_fails_or_succeeds_by_its_rate():
    assert tasks.flaky.call(0.0) == "lucky"
    with pytest.raises(RuntimeError, match="flaky task failed"):
        tasks.flaky.call(1.0)
