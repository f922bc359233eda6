"""One poller tick: what it reads once and sends to each watched topic."""

from __future__ import annotations

import pytest
from django.utils import timezone

from queues import lifecycle, values
from queues.console import render
from queues.console.events import DEAD, JOBS, OVERVIEW, Topic, job_topic, queue_topic
from queues.console.ticks import Tick
from queues.models import Job, Queue, Worker
from queues.states import Outcome

from .factories import make_job, start_claimed

pytestmark = pytest.mark.django_db


def updates(tick: Tick, topics: set[Topic], refresh: set[Topic] = frozenset()) -> dict:
    return {update.topic: update for update in tick.run(set(topics), set(refresh))}


def test_a_refreshed_overview_gets_its_fragments():
    make_job()
    sent = updates(Tick(), {OVERVIEW}, {OVERVIEW})
    assert 'id="queue-table"' in render.shared(sent[OVERVIEW])


def test_an_unchanged_overview_is_not_sent_again():
    tick = Tick()
    updates(tick, {OVERVIEW}, {OVERVIEW})
    assert OVERVIEW not in updates(tick, {OVERVIEW})


def test_a_new_job_is_sent_to_the_jobs_topic_once():
    tick = Tick()
    updates(tick, {JOBS})
    job = make_job()
    first = updates(tick, {JOBS})[JOBS].jobs
    assert [record.id for record in first] == [job.id] and JOBS not in updates(tick, {JOBS})


def test_a_status_change_is_sent():
    tick = Tick()
    job = make_job()
    updates(tick, {JOBS})
    lifecycle.cancel(job.id)
    (record,) = updates(tick, {JOBS})[JOBS].jobs
    assert record.status == "cancelled"


def test_a_changed_job_carries_its_arguments_as_the_database_searches_them():
    tick = Tick()
    updates(tick, {JOBS})
    make_job(args=["invoice-7"])
    (record,) = updates(tick, {JOBS})[JOBS].jobs
    assert "invoice-7" in record.args_text


def test_many_changes_in_one_instant_are_all_read():
    tick = Tick()
    updates(tick, {JOBS})
    specs = [values.JobSpec(task_path="tests.tasks.noop") for _ in range(1200)]
    lifecycle.enqueue_many(specs)  # one timestamp for all: paged by (updated_at, id)
    assert len(updates(tick, {JOBS})[JOBS].jobs) == 1200


def test_pausing_a_queue_refreshes_its_page():
    tick, topic = Tick(), queue_topic("default")
    updates(tick, {topic}, {topic})
    Queue.objects.filter(name="default").update(paused=True)
    assert 'data-state="paused"' in render.shared(updates(tick, {topic})[topic])


def test_a_watched_job_gets_its_detail_and_attempts():
    job = make_job()
    tick, topic = Tick(), job_topic(job.id)
    updates(tick, {topic})
    (claimed,) = start_claimed("w", None, 1)
    now = timezone.now()
    lifecycle.finish(
        "w", [values.Finished(claimed, Outcome.FAILED, now, now, error_type="E", retryable=False)]
    )
    detail = updates(tick, {topic})[topic]
    assert detail.job.status == "dead" and [attempt.number for attempt in detail.attempts] == [1]


def test_a_deleted_job_page_is_told_so():
    job = make_job()
    Job.objects.filter(id=job.id).delete()
    topic = job_topic(job.id)
    assert updates(Tick(), {topic}, {topic})[topic].job is None


def test_new_dead_letters_reach_the_dead_topic():
    tick = Tick()
    updates(tick, {DEAD}, {DEAD})
    make_job()
    (claimed,) = start_claimed("w", None, 1)
    now = timezone.now()
    lifecycle.finish(
        "w", [values.Finished(claimed, Outcome.FAILED, now, now, error_type="E", retryable=False)]
    )
    sent = updates(tick, {DEAD})[DEAD]
    assert [letter.job_id for letter in sent.new] == [claimed.id] and 'id="dead-groups"' in render.shared(
        sent
    )


def test_topics_nobody_watches_cost_nothing(django_assert_max_num_queries):
    tick = Tick()
    updates(tick, set())
    with django_assert_max_num_queries(2):  # changed jobs, queues: no counting, nobody watches
        updates(tick, set())


def test_a_worker_starting_refreshes_the_overview():
    tick = Tick()
    updates(tick, {OVERVIEW}, {OVERVIEW})
    lifecycle.register_worker(Worker(id="w-1", hostname="h", pid=1, concurrency=1))
    assert 'id="workers-alive">1<' in render.shared(updates(tick, {OVERVIEW})[OVERVIEW])
