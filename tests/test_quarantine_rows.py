"""Rows other than jobs that nothing can read back are repaired; they stop no worker or page.

As in test_quarantine.py, each test writes the unreadable value straight into the row.
A schedule so repaired is switched off with the reason in its last error; every other
row gets a readable time (now, or none where it may have none) or empty JSON.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from queues import lifecycle, scheduler
from queues.lifecycle.maintenance import repair_unreadable_rows
from queues.models import DeadLetter, Job, Schedule, Worker

from .api import ApiClient
from .console_helpers import client_for, make_operator
from .factories import make_dead_job, make_queue
from .processes import WorkerProcess, wait_until
from .test_quarantine import due_but_unreadable, future_and_unreadable
from .test_scheduler import TTL

pytestmark = pytest.mark.django_db


def poison_row(row, column: str, value: str) -> None:
    table = row._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {column} = %s WHERE id = %s", [value, row.pk])


def make_schedule(name: str = "nightly", cron: str = "* * * * *") -> Schedule:
    return Schedule.objects.create(name=name, cron=cron, queue=make_queue(), task_path="tests.tasks.noop")


def unreadable_schedule(value: str | None = None) -> Schedule:
    schedule = make_schedule("poisoned")
    poison_row(schedule, "next_run_at", value or due_but_unreadable())
    return schedule


def make_worker() -> Worker:
    return lifecycle.register_worker(Worker(id="w-1", hostname="host", pid=1, queues=[], concurrency=1))


def test_a_scheduler_tick_switches_off_a_schedule_it_cannot_read_and_runs_the_others():
    poisoned = unreadable_schedule()
    readable = make_schedule("readable")
    Schedule.objects.filter(pk=readable.pk).update(next_run_at=timezone.now())
    assert scheduler.tick("leader", TTL) == 1
    poisoned = Schedule.objects.get(pk=poisoned.pk)
    assert (poisoned.enabled, poisoned.next_run_at) == (False, None)
    assert poisoned.last_error.startswith("Switched off, unreadable: next_run_at holds")
    assert Job.objects.get().task_path == "tests.tasks.noop"


def test_a_repaired_schedule_switched_back_on_plans_its_next_run_from_now():
    poisoned = unreadable_schedule()
    repair_unreadable_rows()
    schedule = Schedule.objects.get(pk=poisoned.pk)
    schedule.enabled = True
    schedule.save()
    assert schedule.next_run_at > timezone.now()


def test_schedule_arguments_of_the_wrong_json_type_are_emptied():
    schedule = make_schedule()
    poison_row(schedule, "args", '{"not": "a list"}')
    assert repair_unreadable_rows() == 1
    schedule = Schedule.objects.get(pk=schedule.pk)
    assert (schedule.args, schedule.enabled) == ([], False)


def test_a_dead_letter_with_an_unreadable_time_gets_a_readable_one():
    letter = DeadLetter.objects.get(job=make_dead_job())
    poison_row(letter, "created_at", future_and_unreadable())
    assert [row.pk for row in DeadLetter.objects.all()] == [letter.pk]
    assert DeadLetter.objects.get(pk=letter.pk).created_at <= timezone.now()


def test_a_worker_row_with_an_unreadable_time_is_repaired_when_read():
    worker = make_worker()
    poison_row(worker, "stopped_at", future_and_unreadable())
    assert Worker.objects.get(pk=worker.pk).stopped_at is None


def test_readable_rows_are_left_alone():
    make_schedule()
    make_worker()
    make_dead_job()
    assert repair_unreadable_rows() == 0


@pytest.mark.parametrize("url", ["/schedules/", "/workers/", "/dead/", "/"])
def test_console_pages_keep_answering(url):
    unreadable_schedule(future_and_unreadable())
    poison_row(make_worker(), "last_heartbeat", future_and_unreadable())
    poison_row(DeadLetter.objects.get(job=make_dead_job()), "created_at", future_and_unreadable())
    assert client_for(make_operator()).get(url).status_code == 200


@pytest.mark.parametrize("url", ["/schedules", "/workers", "/dead-letters"])
def test_the_api_keeps_answering(url):
    unreadable_schedule(future_and_unreadable())
    poison_row(make_worker(), "last_heartbeat", future_and_unreadable())
    poison_row(DeadLetter.objects.get(job=make_dead_job()), "created_at", future_and_unreadable())
    assert ApiClient().get(url).status_code == 200


def test_taskctl_lists_schedules(capsys):
    unreadable_schedule(future_and_unreadable())
    call_command("taskctl", "schedules", "list")
    assert "poisoned" in capsys.readouterr().out


def test_metrics_keep_answering():
    poison_row(make_worker(), "last_heartbeat", future_and_unreadable())
    assert Client().get("/metrics").status_code == 200


@pytest.mark.process
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_keeps_running_and_scheduling_past_an_unreadable_schedule(tmp_path):
    poisoned = unreadable_schedule()
    readable = make_schedule("readable")
    Schedule.objects.filter(pk=readable.pk).update(next_run_at=timezone.now())
    worker = WorkerProcess("--concurrency", "1", log_dir=tmp_path)
    try:
        wait_until(lambda: Job.objects.filter(task_path="tests.tasks.noop", status="succeeded").exists())
        assert worker.proc.poll() is None, worker.output()
    finally:
        assert worker.stop() == 0, worker.output()
    assert not Schedule.objects.get(pk=poisoned.pk).enabled
