"""Example tasks that make the demo real: email, images, data files, progress, failures."""

from __future__ import annotations

import csv
import random
import statistics
import time
from pathlib import Path

from django.conf import settings
from django.core.mail import send_mail
from PIL import Image

from queues.compat import task
from queues.progress import set_progress


@task(max_attempts=5, timeout=60)
def send_email(to: str, subject: str, body: str) -> dict:
    """Send one email through Django's email backend (the console in development)."""
    sent = send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to])
    return {"to": to, "sent": sent}


@task(timeout=120)
def resize_image(source: str, width: int, height: int) -> dict:
    """Make a thumbnail of an image file; writes ``<name>-<w>x<h>.<ext>`` beside it."""
    path = Path(source)
    with Image.open(path) as image:
        image.thumbnail((width, height))
        target = path.with_name(f"{path.stem}-{width}x{height}{path.suffix}")
        image.save(target)
        return {"path": str(target), "size": list(image.size)}


@task(timeout=600)
def csv_stats(source: str, column: str) -> dict:
    """Count, sum, mean, median, min and max of one numeric column of a CSV file."""
    values: list[float] = []
    skipped = 0
    with open(source, newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                values.append(float(row[column]))
            except (KeyError, TypeError, ValueError):
                skipped += 1
    if not values:
        raise ValueError(f"column {column!r} of {source} has no numeric values")
    return {
        "rows": len(values),
        "skipped": skipped,
        "sum": sum(values),
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


@task(timeout=300)
def long_report(steps: int = 10, step_seconds: float = 0.5) -> str:
    """Works through ``steps`` steps, reporting progress after each one."""
    for step in range(1, steps + 1):
        time.sleep(step_seconds)
        set_progress(100 * step / steps, f"step {step} of {steps}")
    return f"report of {steps} steps done"


@task(max_attempts=3)
def flaky(failure_rate: float = 0.5) -> str:
    """Fails at random so that retries, back-off and dead letters can be watched."""
    if random.random() < failure_rate:
        raise RuntimeError(f"flaky task failed (failure rate {failure_rate:.0%})")
    return "lucky"
