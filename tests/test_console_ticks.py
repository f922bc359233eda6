"""One poller tick: what it reads once and sends to each watched topic."""

from __future__ import annotations

import pytest
from django.utils import timezone

from queues import lifecycle, values
from queues.console.ticks import Tick
from queues.models import Job, Queue, Worker
from queues.states import Outcome

from .factories import make_job, start_claimed

pytestmark = pytest.mark.django_db


def events(
    tick: Tick, topics: set[str], refresh: set[str] = frozenset(), rows: set[int] = frozenset()
) -> dict:
    return dict(tick.run(set(topics), set(refresh), set(rows)))


def test_a_refreshed_overview_gets_its_fragments():
    make_job()
    sent = events(Tick(), {"overview"}, {"overview"})
    assert 'id="queue-table"' in sent["overview"]["html"]


def test_an_unchanged_overview_is_not_sent_again():
    tick = Tick()
    events(tick, {"overview"}, {"overview"})
    assert "overview" not in events(tick, {"overview"})


def test_a_new_job_is_sent_to_the_jobs_topic_once():
    tick = Tick()
    events(tick, {"jobs"})
    job = make_job()
    first = events(tick, {"jobs"})["jobs"]["jobs"]
    assert [record["id"] for record in first] == [job.id] and "jobs" not in events(tick, {"jobs"})


def test_a_status_change_is_sent():
    tick = Tick()
    job = make_job()
    events(tick, {"jobs"})
    lifecycle.cancel(job.id)
    (record,) = events(tick, {"jobs"})["jobs"]["jobs"]
    assert record["status"] == "cancelled"


def test_rows_a_socket_asks_for_are_sent_even_unchanged():
    job = make_job()
    tick = Tick()
    events(tick, {"jobs"})
    (record,) = events(tick, {"jobs"}, rows={job.id})["jobs"]["jobs"]
    assert record["id"] == job.id


def test_many_changes_in_one_instant_are_all_read():
    tick = Tick()
    events(tick, {"jobs"})
    specs = [values.JobSpec(task_path="tests.tasks.noop") for _ in range(1200)]
    lifecycle.enqueue_many(specs)  # one timestamp for all: paged by (updated_at, id)
    assert len(events(tick, {"jobs"})["jobs"]["jobs"]) == 1200


def test_pausing_a_queue_refreshes_its_page():
    tick = Tick()
    events(tick, {"queue.default"}, {"queue.default"})
    Queue.objects.filter(name="default").update(paused=True)
    assert 'data-state="paused"' in events(tick, {"queue.default"})["queue.default"]["html"]


def test_a_watched_job_gets_its_detail_and_attempts():
    job = make_job()
    tick = Tick()
    events(tick, {f"job.{job.id}"})
    (claimed,) = start_claimed("w", None, 1)
    now = timezone.now()
    lifecycle.finish(
        "w", [values.Finished(claimed, Outcome.FAILED, now, now, error_type="E", retryable=False)]
    )
    detail = events(tick, {f"job.{job.id}"})[f"job.{job.id}"]
    assert detail["status"] == "dead" and [number for number, _ in detail["attempts"]] == [1]


def test_a_deleted_job_page_is_told_so():
    job = make_job()
    Job.objects.filter(id=job.id).delete()
    detail = events(Tick(), {f"job.{job.id}"}, {f"job.{job.id}"})[f"job.{job.id}"]
    assert "was deleted" in detail["live"]


def test_new_dead_letters_reach_the_dead_topic():
    tick = Tick()
    events(tick, {"dead"}, {"dead"})
    make_job()
    (claimed,) = start_claimed("w", None, 1)
    now = timezone.now()
    lifecycle.finish(
        "w", [values.Finished(claimed, Outcome.FAILED, now, now, error_type="E", retryable=False)]
    )
    sent = events(tick, {"dead"})["dead"]
    assert [letter["job_id"] for letter in sent["letters"]] == [claimed.id] and 'id="dead-groups"' in sent[
        "html"
    ]


def test_topics_nobody_watches_cost_nothing(django_assert_max_num_queries):
    tick = Tick()
    events(tick, set())
    with django_assert_max_num_queries(2):  # changed jobs, queues: no counting, nobody watches
        events(tick, set())


def test_a_worker_starting_refreshes_the_overview():
    tick = Tick()
    events(tick, {"overview"}, {"overview"})
    lifecycle.register_worker(Worker(id="w-1", hostname="h", pid=1, concurrency=1))
    assert 'id="workers-alive">1<' in events(tick, {"overview"})["overview"]["html"]
