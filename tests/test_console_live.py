"""The poller's fan-out: each tick's fragments rendered once per topic and ``reveal`` value,
however many sockets watch, and each socket given the variant its user may see."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from django.test.signals import template_rendered

from queues.console.access import Viewer
from queues.console.events import OVERVIEW, job_topic
from queues.console.live import Fanout, Subscription
from queues.console.ticks import Tick
from queues.console.watches import JobWatch, Watch
from queues.encryption import HIDDEN

from .factories import make_job
from .test_encryption import SECRET, finished_secret_jobs, key  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def rendered() -> Iterator[Counter]:
    """How many times each template was rendered (Django's own test signal)."""
    counts: Counter = Counter()

    def count(sender, template, **kwargs) -> None:
        counts[template.name] += 1

    template_rendered.connect(count)
    yield counts
    template_rendered.disconnect(count)


def sockets(watch, count: int) -> list[Subscription]:
    """``count`` sockets on one page, every other one of a user who may see payloads."""
    return [
        Subscription(socket=object(), watch=watch(), viewer=Viewer(n, f"session-{n}"), reveal=n % 2 == 0)
        for n in range(count)
    ]


@pytest.mark.usefixtures("key")
def test_a_job_page_is_rendered_once_per_reveal_value_however_many_sockets_watch(rendered):
    done, _ = finished_secret_jobs()
    topic = job_topic(int(done))
    subs = sockets(lambda: JobWatch(int(done), 0, frozenset()), 6)
    html = Fanout().html(Tick().run({topic}, {topic}), subs)
    assert rendered["queues/live/job.html"] == 2
    for sub in subs:
        shown = html[sub]
        assert (SECRET in shown, HIDDEN in shown) == (sub.reveal, not sub.reveal)


def test_fragments_without_payloads_are_rendered_once_for_every_viewer(rendered):
    make_job()
    subs = sockets(lambda: Watch(frozenset({OVERVIEW})), 4)
    html = Fanout().html(Tick().run({OVERVIEW}, {OVERVIEW}), subs)
    assert rendered["queues/live/overview.html"] == 1
    assert len(set(html.values())) == 1 and 'id="queue-table"' in html[subs[0]]
