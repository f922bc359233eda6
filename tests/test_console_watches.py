"""What one socket's watch makes of an update: its rows, its "N new", its new attempts."""

from __future__ import annotations

import pytest
from django.utils import timezone

from queues import lifecycle
from queues.console import render
from queues.console.events import DeadLetterRecord, DeadLettersUpdate, JobRecord, JobsUpdate, JobUpdate
from queues.console.watches import DeadLetterListWatch, IdRange, JobListWatch, JobWatch, watch_for
from queues.filters import DeadLetterFilter, JobFilter
from queues.models import Attempt, Job
from queues.states import Outcome

from .factories import make_job

pytestmark = pytest.mark.django_db


def record(job_id: int, **fields) -> JobRecord:
    values = {
        "queue": "default",
        "task": "app.tasks.mail",
        "status": "queued",
        "progress": 0,
        "args_text": "[]",
    }
    return JobRecord(id=job_id, **{**values, **fields})


def jobs(*records: JobRecord) -> JobsUpdate:
    return JobsUpdate(records)


def test_a_list_sends_cells_of_its_range_that_its_filter_keeps_matching():
    watch = JobListWatch(JobFilter(queue="default", status="queued"), IdRange(5, 9), None)
    update = jobs(record(9, status="running"), record(8, queue="other"), record(10))
    html = watch.show(update, "")
    assert 'data-cell="job-9-status"' in html and "job-8" not in html and "job-10" not in html


def test_cells_travel_in_the_element_the_page_sorts_them_from():
    html = JobListWatch(JobFilter(), IdRange(1, 1), None).show(jobs(record(1)), "")
    assert html.startswith('<div id="live-cells" hx-swap-oob="innerHTML">')


def test_a_list_opened_late_catches_up_with_its_range_as_it_is_now():
    job = make_job()
    make_job(queue="mail")
    watch = JobListWatch(JobFilter(queue="default"), IdRange(job.id, job.id + 1), None)
    lifecycle.cancel(job.id)
    html = watch.start()
    assert f'data-cell="job-{job.id}-status" class="status status-cancelled"' in html
    assert f"job-{job.id + 1}-status" not in html


def test_new_matching_rows_are_counted_once_behind_a_show_control():
    watch = JobListWatch(JobFilter(queue="default"), IdRange(), 10)
    watch.show(jobs(record(11), record(12, queue="other")), "")
    html = watch.show(jobs(record(11, status="running"), record(13)), "")
    assert "2 new — show" in html and 'href="?queue=default"' in html


def test_rows_older_than_the_page_are_not_new():
    watch = JobListWatch(JobFilter(), IdRange(), 10)
    assert "new" not in watch.show(jobs(record(5)), "")


def test_a_page_further_down_the_list_counts_no_new_rows():
    watch = JobListWatch(JobFilter(), IdRange(1, 5), None)
    assert "new" not in watch.show(jobs(record(11)), "")


def test_a_search_counts_new_rows_whose_arguments_match():
    watch = JobListWatch(JobFilter(q="INVOICE"), IdRange(), 0)
    html = watch.show(jobs(record(1, args_text='["invoice-7"]'), record(2)), "")
    assert "1 new — show" in html


def failed_attempt(job: Job, number: int) -> Attempt:
    now = timezone.now()
    return Attempt(job=job, number=number, started_at=now, finished_at=now, outcome=Outcome.FAILED)


def test_a_job_page_appends_only_attempts_it_does_not_show():
    job = make_job()
    watch = JobWatch(job.id, attempts=1, allowed=frozenset())
    update = JobUpdate(job.id, job, (failed_attempt(job, 1), failed_attempt(job, 2)))
    html = watch.show(update, "")
    assert 'id="attempt-2"' in html and 'id="attempt-1"' not in html
    assert 'id="attempt-2"' not in watch.show(update, "")


def test_a_job_page_shows_buttons_only_for_allowed_actions():
    job = make_job()
    lifecycle.cancel(job.id)
    job.refresh_from_db()
    update = JobUpdate(job.id, job, ())
    assert "hx-post" not in JobWatch(job.id, 0, frozenset()).show(update, "")
    assert "Retry" in JobWatch(job.id, 0, frozenset({"job.retry"})).show(update, "")


def test_a_deleted_job_page_is_told_so():
    update = JobUpdate(5, None, ())
    assert "was deleted" in JobWatch(5, 0, frozenset()).show(update, render.shared(update))


def letter(letter_id: int, error_type: str) -> DeadLetterRecord:
    return DeadLetterRecord(letter_id, letter_id, "q", "t", error_type, "")


def test_dead_letters_matching_the_filter_are_counted_as_new():
    watch = DeadLetterListWatch(DeadLetterFilter(error_type="KeyError"), IdRange(), 3)
    update = DeadLettersUpdate([], (letter(4, "KeyError"), letter(5, "OSError")))
    assert "1 new — show" in watch.show(update, "")


def test_a_socket_address_naming_nothing_known_gives_no_watch():
    assert watch_for({"page": "queue", "name": "bad name!"}, frozenset()) is None


def test_a_socket_address_with_a_filter_no_page_writes_gives_no_watch():
    assert watch_for({"page": "jobs", "status": "sleeping"}, frozenset()) is None
