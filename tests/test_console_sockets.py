"""What one socket makes of a tick's events: its rows, its "N new", its new attempts."""

from __future__ import annotations

from queues.console.sockets import DeadPage, JobPage, JobsPage, page_for


def record(job_id: int, **fields) -> dict:
    return {
        "id": job_id,
        "queue": "default",
        "task": "app.tasks.mail",
        "status": "queued",
        "progress": 0,
        "args": "[]",
        **fields,
    }


def test_a_list_updates_only_the_rows_it_shows():
    page = JobsPage({}, top=10, rows={9})
    html = page.jobs_changed({"jobs": [record(9), record(8)]})
    assert 'id="job-9-status"' in html and 'id="job-8-status"' not in html


def test_new_matching_rows_are_counted_once_behind_a_show_control():
    page = JobsPage({"queue": "default"}, top=10, rows=set())
    page.jobs_changed({"jobs": [record(11), record(12, queue="other")]})
    html = page.jobs_changed({"jobs": [record(11, status="running"), record(13)]})
    assert "2 new — show" in html and 'href="?queue=default"' in html


def test_rows_older_than_the_page_are_not_new():
    page = JobsPage({}, top=10, rows=set())
    assert "new" not in page.jobs_changed({"jobs": [record(5)]})


def test_a_search_counts_new_rows_whose_arguments_match():
    page = JobsPage({"q": "invoice"}, top=0, rows=set())
    html = page.jobs_changed({"jobs": [record(1, args='["invoice-7"]'), record(2)]})
    assert "1 new — show" in html


def test_a_job_page_appends_only_attempts_it_does_not_show():
    page = JobPage(5, attempts=1, allowed=frozenset())
    event = {
        "id": 5,
        "status": "dead",
        "live": '<section id="job-live"></section>',
        "attempts": [[1, '<details id="attempt-1">'], [2, '<details id="attempt-2">']],
    }
    html = page.job_changed(event)
    assert 'id="attempt-2"' in html and 'id="attempt-1"' not in html
    assert 'id="attempt-2"' not in page.job_changed(event)


def test_a_job_page_shows_buttons_only_for_allowed_actions():
    event = {"id": 5, "status": "dead", "live": "", "attempts": []}
    assert "hx-post" not in JobPage(5, 0, frozenset()).job_changed(event)
    assert "Replay" in JobPage(5, 0, frozenset({"job.retry"})).job_changed(event)


def test_dead_letters_matching_the_filter_are_counted_as_new():
    page = DeadPage({"error_type": "KeyError"}, top=3, rows=set())
    letters = [
        {
            "id": 4,
            "job_id": 1,
            "queue_name": "q",
            "task_path": "t",
            "error_type": "KeyError",
            "error_message": "",
        },
        {
            "id": 5,
            "job_id": 2,
            "queue_name": "q",
            "task_path": "t",
            "error_type": "OSError",
            "error_message": "",
        },
    ]
    assert "1 new — show" in page.dead_changed({"html": "", "letters": letters})


def test_a_socket_url_naming_nothing_known_gives_no_page():
    assert page_for({"page": "queue", "name": "bad name!"}, frozenset()) is None
