"""Cron schedules: validation, the leader lease, exactly-once due runs, missed runs, run now."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from queues import cron, scheduler
from queues.models import Job, Lease, Schedule, ScheduleRun, Worker

from .factories import make_queue
from .processes import WorkerProcess, wait_until

TTL = timedelta(seconds=30)


def make_schedule(name: str = "nightly", cron: str = "0 3 * * *", **fields) -> Schedule:
    fields.setdefault("queue", make_queue("default"))
    fields.setdefault("task_path", "tests.tasks.noop")
    return Schedule.objects.create(name=name, cron=cron, **fields)


def make_due(schedule: Schedule, ago: timedelta) -> datetime:
    """Pretend the schedule's next run fell due ``ago`` (as after downtime)."""
    due = timezone.now() - ago
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=due)
    return due


# --- validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cron", "reason"),
    [
        ("61 * * * *", "not a valid cron expression"),
        ("* * * *", "has 4"),
        ("* * * * * *", "has 6"),
        ("@reboot", "Unknown alias"),
        ("every day", "has 2"),
        ("", "has 0"),
        ("0 0 31 2 *", "not a valid cron expression"),  # February 31st never comes
    ],
)
@pytest.mark.django_db
def test_a_bad_cron_expression_is_refused_with_the_reason_and_nothing_is_saved(cron, reason):
    with pytest.raises(ValidationError, match=reason) as info:
        make_schedule(cron=cron)
    assert "cron" in info.value.message_dict
    assert not Schedule.objects.exists()


@pytest.mark.django_db
def test_an_unknown_time_zone_is_refused():
    with pytest.raises(ValidationError, match="Unknown time zone 'Mars/Olympus'"):
        make_schedule(time_zone="Mars/Olympus")
    assert not Schedule.objects.exists()


@pytest.mark.django_db
def test_changing_a_schedule_to_a_bad_expression_leaves_the_row_unchanged():
    schedule = make_schedule(cron="@hourly")
    schedule.cron = "*/0 * * * *"
    with pytest.raises(ValidationError):
        schedule.save()
    assert Schedule.objects.get(pk=schedule.pk).cron == "@hourly"


@pytest.mark.django_db
def test_a_new_schedule_plans_its_first_run():
    schedule = make_schedule(cron="@hourly")
    assert schedule.next_run_at == cron.next_due("@hourly", "UTC", schedule.created_at)


@pytest.mark.django_db
def test_switching_a_schedule_back_on_plans_from_now_without_a_catch_up_run():
    schedule = make_schedule(cron="@hourly", enabled=False)
    make_due(schedule, timedelta(days=2))
    schedule = Schedule.objects.get(pk=schedule.pk)
    schedule.enabled = True
    schedule.save()
    assert schedule.next_run_at > timezone.now()
    assert scheduler.tick("leader", TTL) == 0


# --- the leader lease --------------------------------------------------------------


@pytest.mark.django_db
def test_only_one_holder_gets_the_lease_until_it_expires_or_is_released():
    assert scheduler.hold_lease("a", TTL)
    assert not scheduler.hold_lease("b", TTL)
    assert scheduler.hold_lease("a", TTL)
    scheduler.release_lease("a")
    assert scheduler.hold_lease("b", TTL)


@pytest.mark.django_db
def test_an_expired_lease_is_taken_over():
    assert scheduler.hold_lease("a", TTL)
    Lease.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert scheduler.hold_lease("b", TTL)
    assert Lease.objects.get().holder == "b"


@pytest.mark.django_db
def test_a_worker_without_the_lease_enqueues_nothing():
    make_due(make_schedule(), timedelta(seconds=1))
    scheduler.hold_lease("leader", TTL)
    assert scheduler.tick("other", TTL) == 0
    assert not Job.objects.exists()


# --- due runs ----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_due_run_is_enqueued_once_and_the_next_run_planned():
    schedule = make_schedule(cron="@hourly", args=[1], priority=10)
    due = make_due(schedule, timedelta(seconds=1))
    assert scheduler.tick("leader", TTL) == 1
    job = Job.objects.get()
    schedule.refresh_from_db()
    assert (job.task_path, job.args, job.priority, job.meta["schedule"]) == (
        "tests.tasks.noop",
        [1],
        10,
        "nightly",
    )
    assert (schedule.last_job, ScheduleRun.objects.get().due_at) == (job, due)
    assert schedule.next_run_at > timezone.now()
    assert scheduler.tick("leader", TTL) == 0


@pytest.mark.django_db
def test_a_due_time_already_enqueued_by_another_leader_is_not_enqueued_again():
    schedule = make_schedule(cron="@hourly")
    due = make_due(schedule, timedelta(seconds=1))
    ScheduleRun.objects.create(schedule=schedule, due_at=due)
    assert scheduler.tick("leader", TTL) == 0
    assert not Job.objects.exists()
    schedule.refresh_from_db()
    assert schedule.next_run_at > timezone.now()


@pytest.mark.django_db
def test_runs_missed_during_downtime_are_enqueued_once():
    schedule = make_schedule(cron="* * * * *")
    due = make_due(schedule, timedelta(hours=3))  # 180 runs were missed
    assert scheduler.tick("leader", TTL) == 1
    assert scheduler.tick("leader", TTL) == 0
    assert Job.objects.count() == 1
    assert ScheduleRun.objects.get().due_at == due
    schedule.refresh_from_db()
    assert timezone.now() < schedule.next_run_at <= timezone.now() + timedelta(minutes=1)


@pytest.mark.django_db
def test_a_disabled_schedule_is_not_enqueued():
    make_due(make_schedule(enabled=False), timedelta(seconds=1))
    assert scheduler.tick("leader", TTL) == 0


@pytest.mark.django_db
def test_a_run_that_cannot_be_enqueued_is_recorded_and_the_schedule_moves_on():
    schedule = make_schedule(task_path="tests.tasks.missing")
    make_due(schedule, timedelta(seconds=1))
    assert scheduler.tick("leader", TTL) == 0
    schedule.refresh_from_db()
    assert "tests.tasks.missing" in schedule.last_error
    assert schedule.next_run_at > timezone.now()
    assert not Job.objects.exists() and not ScheduleRun.objects.exists()


@pytest.mark.django_db
def test_a_schedule_with_a_corrupt_timetable_is_parked_with_the_reason():
    schedule = make_schedule()
    make_due(schedule, timedelta(seconds=1))
    Schedule.objects.filter(pk=schedule.pk).update(cron="not cron")  # past validation
    assert scheduler.tick("leader", TTL) == 0
    schedule.refresh_from_db()
    assert (schedule.next_run_at, "5 fields" in schedule.last_error) == (None, True)
    assert scheduler.tick("leader", TTL) == 0


@pytest.mark.django_db
def test_run_now_enqueues_at_once_and_keeps_the_timetable():
    schedule = make_schedule(kwargs={"a": 1, "b": 2}, task_path="tests.tasks.add")
    planned = schedule.next_run_at
    job = scheduler.run_now(schedule)
    schedule.refresh_from_db()
    assert (job.kwargs, schedule.last_job, schedule.next_run_at) == ({"a": 1, "b": 2}, job, planned)


# --- many workers ------------------------------------------------------------------


@pytest.mark.process
@pytest.mark.django_db(transaction=True)
def test_two_workers_never_enqueue_a_due_run_twice(tmp_path):
    # Yearly, so that only the due times the test sets come round while it runs.
    schedules = [make_schedule(f"yearly-{n}", "0 0 1 1 *") for n in range(3)]
    workers = [WorkerProcess("--concurrency", "1", log_dir=tmp_path) for _ in range(2)]
    try:
        for round_ in range(1, 6):
            for schedule in schedules:
                make_due(schedule, timedelta(minutes=10 * round_))
            wait_until(lambda n=round_: ScheduleRun.objects.filter(job__isnull=False).count() == 3 * n)
        # Both workers keep ticking for a few more heartbeats before they stop.
        later = timezone.now() + timedelta(seconds=2)
        wait_until(lambda: Worker.objects.filter(last_heartbeat__gt=later).count() == 2)
        for worker in workers:
            worker.stop()
    finally:
        for worker in workers:
            worker.kill()
    assert ScheduleRun.objects.count() == 15
    assert Job.objects.count() == 15
