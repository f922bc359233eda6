"""``manage.py taskctl``: through call_command, and as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from queues import auth_tokens, lifecycle, values
from queues.models import ApiToken, Job, Queue, Schedule
from queues.states import Status

from .api import ApiClient
from .console_helpers import make_operator, make_user, make_viewer
from .factories import make_job, make_queue, make_token, start_claimed
from .processes import ROOT, child_env, run_python


def taskctl(*args: str) -> str:
    out = StringIO()
    call_command("taskctl", *args, stdout=out)
    return out.getvalue()


def taskctl_json(*args: str):
    return json.loads(taskctl(*args, "--json"))


def dead_job(queue: str = "default") -> Job:
    """A job that failed for good; make it before any other job of its queue."""
    job = make_job("tests.tasks.fail", queue=queue)
    (claimed,) = start_claimed("w", [queue], 1)
    now = timezone.now()
    lifecycle.finish("w", [values.Finished(claimed, "failed", now, now, error_type="E", retryable=False)])
    return job


@pytest.mark.django_db
class TestInProcess:
    def test_enqueue_creates_the_job(self):
        data = taskctl_json("enqueue", "tests.tasks.add", "--args", "[1, 2]", "--priority", "high")
        assert (Job.objects.get(pk=data["id"]).args, data["priority"]) == ([1, 2], 10)

    def test_enqueue_with_a_delay_schedules_it(self):
        assert taskctl_json("enqueue", "tests.tasks.noop", "--delay", "60")["status"] == Status.SCHEDULED

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["tests.tasks.missing"], "is not a registered task"),
            (["tests.tasks.noop", "--queue", "typo"], "'typo' does not exist"),
            (["tests.tasks.noop", "--args", "[1"], "--args is not valid JSON"),
            (["tests.tasks.noop", "--args", "{}"], "--args must be a JSON array"),
            (["tests.tasks.noop", "--priority", "urgent"], "Priority 'urgent'"),
            (["tests.tasks.noop", "--run-at", "tomorrow"], "not an ISO time"),
            (["tests.tasks.noop", "--run-at", "0001-01-01T00:00:00+14:00"], "--run-at .* out of range"),
            (["tests.tasks.noop", "--run-at", "2026-13-01T00:00:00+00:00"], "not an ISO time"),
            (["tests.tasks.noop", "--delay", "1e300"], "--delay must be a number of seconds"),
            (["tests.tasks.noop", "--max-attempts", "1000000000000"], "max_attempts must be a whole number"),
            (["tests.tasks.noop", "--args", "[" * 1000 + "]" * 1000], "nest more than 32 levels"),
            ([".tasks.noop"], "is not a task path"),
        ],
    )
    def test_enqueue_with_bad_input_fails_clearly_and_creates_nothing(self, args, message):
        with pytest.raises(CommandError, match=message):
            taskctl("enqueue", *args)
        assert not Job.objects.exists()

    def test_stats_prints_a_table_of_queues(self):
        make_job()
        assert taskctl("stats").splitlines()[1].split()[:4] == ["default", "False", "0", "1"]

    def test_queues_create_with_limits(self):
        taskctl("queues", "create", "mail", "--concurrency", "3", "--rate-limit", "2.5")
        assert Queue.objects.filter(name="mail", concurrency=3, rate_limit=2.5).exists()

    @pytest.mark.parametrize(
        ("option", "message"),
        [
            (["--retention", "1e300"], "retention must be a number of seconds"),
            (["--rate-limit", "nan"], "rate_limit must be a number"),
            (["--concurrency", "1000000000000"], "concurrency must be a whole number"),
        ],
    )
    def test_queues_create_with_a_limit_out_of_range_fails_clearly(self, option, message):
        with pytest.raises(CommandError, match=message):
            taskctl("queues", "create", "mail", *option)
        assert not Queue.objects.filter(name="mail").exists()

    @pytest.mark.parametrize(
        ("command", "reason"),
        [(("create", "default"), "already exists"), (("pause", "nope"), "'nope'")],
        ids=["existing", "unknown"],
    )
    def test_a_queues_command_on_the_wrong_queue_fails_saying_why(self, command, reason):
        with pytest.raises(CommandError, match=reason):
            taskctl("queues", *command)

    def test_queues_list_shows_counts(self):
        make_job()
        (default,) = taskctl_json("queues", "list")
        assert default["counts"]["queued"] == 1

    def test_queues_pause_and_resume(self):
        taskctl("queues", "pause", "default")
        paused = Queue.objects.get(name="default").paused
        taskctl("queues", "resume", "default")
        assert (paused, Queue.objects.get(name="default").paused) == (True, False)

    def test_queues_purge_deletes_waiting_jobs(self):
        make_job()
        assert taskctl_json("queues", "purge", "default") == {"count": 1}

    def test_queues_delete_removes_the_queue(self):
        make_queue("old")
        taskctl("queues", "delete", "old")
        assert not Queue.objects.filter(name="old").exists()

    def test_jobs_list_filters_by_status(self):
        make_job()
        cancelled = make_job()
        lifecycle.cancel(cancelled.pk)
        assert [j["id"] for j in taskctl_json("jobs", "list", "--status", "cancelled")] == [cancelled.pk]

    def test_jobs_list_searches_the_arguments(self):
        wanted = make_job(args=["invoice-4711"])
        make_job()
        assert [j["id"] for j in taskctl_json("jobs", "list", "--search", "4711")] == [wanted.pk]

    def test_jobs_show_prints_the_attempt_history(self):
        job = dead_job()
        assert "attempt 1 on w: failed E" in taskctl("jobs", "show", str(job.pk))

    def test_jobs_show_of_an_unknown_id_fails(self):
        with pytest.raises(CommandError, match="Job 4242 does not exist"):
            taskctl("jobs", "show", "4242")

    @pytest.mark.parametrize(
        ("make", "command", "status"),
        [(make_job, ("jobs", "cancel"), Status.CANCELLED), (dead_job, ("dlq", "replay"), Status.QUEUED)],
        ids=["jobs-cancel", "dlq-replay"],
    )
    def test_a_job_command_moves_the_job(self, make, command, status):
        job = make()
        taskctl(*command, str(job.pk))
        assert Job.objects.get(pk=job.pk).status == status

    def test_jobs_cancel_of_a_finished_job_fails_and_changes_nothing(self):
        job = make_job()
        lifecycle.cancel(job.pk)
        with pytest.raises(CommandError, match="it is cancelled"):
            taskctl("jobs", "cancel", str(job.pk))

    def test_jobs_retry(self):
        job = make_job()
        lifecycle.cancel(job.pk)
        taskctl("jobs", "retry", str(job.pk))
        assert Job.objects.get(pk=job.pk).status == Status.QUEUED

    def test_dlq_list_shows_dead_jobs(self):
        job = dead_job()
        assert [d["job_id"] for d in taskctl_json("dlq", "list")] == [job.pk]

    def test_dlq_list_filters_by_the_class_path_of_taskwebs_own_errors(self):
        make_queue("default", max_attempts=1)
        lost = make_job()
        start_claimed("w", None, 1)
        Job.objects.filter(pk=lost.pk).update(lease_expires_at=timezone.now())
        lifecycle.recover_lost()
        dead_job()
        listed = taskctl_json("dlq", "list", "--error-type", "queues.exceptions.WorkerLost")
        assert [d["job_id"] for d in listed] == [lost.pk]

    def test_dlq_replay_with_one_live_id_changes_nothing(self):
        dead = dead_job()
        live = make_job()
        with pytest.raises(CommandError, match=f"Cannot replay job {live.pk}"):
            taskctl("dlq", "replay", str(dead.pk), str(live.pk))
        assert Job.objects.get(pk=dead.pk).status == Status.DEAD

    def test_dlq_replay_all_matching_a_queue(self):
        dead_job("default")
        dead_job("mail")
        assert taskctl_json("dlq", "replay", "--all", "--queue", "mail") == {"count": 1}

    def test_dlq_replay_needs_ids_or_all(self):
        with pytest.raises(CommandError, match="--all"):
            taskctl("dlq", "replay")

    def test_dlq_delete(self):
        job = dead_job()
        taskctl("dlq", "delete", str(job.pk))
        assert not Job.objects.filter(pk=job.pk).exists()

    def test_workers_lists_registered_workers(self):
        from queues.models import Worker

        lifecycle.register_worker(Worker(id="w9", hostname="h", pid=1, concurrency=1))
        assert [w["id"] for w in taskctl_json("workers")] == ["w9"]

    def test_workers_table_shows_reserved_and_running_jobs(self):
        from queues.models import Worker

        lifecycle.register_worker(Worker(id="w9", hostname="h", pid=1, queues=["default"], concurrency=1))
        make_job(), make_job()
        start_claimed("w9", None, 1)
        lifecycle.claim("w9", None, 1)
        header, row = taskctl("workers").splitlines()[:2]
        columns = dict(zip(header.lower().split(), row.split(), strict=False))
        assert (columns["reserved"], columns["running"]) == ("1", "1")

    def test_schedules_list(self):
        Schedule.objects.create(
            name="nightly", cron="0 3 * * *", task_path="tests.tasks.noop", queue=make_queue()
        )
        assert [s["name"] for s in taskctl_json("schedules", "list")] == ["nightly"]

    def test_schedules_run_enqueues_a_job_now(self):
        Schedule.objects.create(
            name="nightly", cron="0 3 * * *", task_path="tests.tasks.add", args=[1, 1], queue=make_queue()
        )
        job_id = taskctl_json("schedules", "run", "nightly")["id"]
        assert Job.objects.get(pk=job_id).args == [1, 1]

    def test_schedules_run_of_an_unknown_schedule_fails(self):
        with pytest.raises(CommandError, match="No schedule is named 'nope'"):
            taskctl("schedules", "run", "nope")

    def test_token_create_shows_the_token_once_and_stores_a_hash(self):
        make_operator("root")
        plain = taskctl_json("token", "create", "ci")["token"]
        assert auth_tokens.authenticate(plain) is not None
        assert plain not in taskctl("token", "list")

    def test_token_create_without_a_user_acts_for_the_only_superuser_with_the_read_scope(self):
        make_operator("root")
        data = taskctl_json("token", "create", "ci")
        assert (data["user"], data["scope"]) == ("root", "read")

    def test_token_create_without_a_user_fails_when_no_superuser_exists(self):
        with pytest.raises(CommandError, match="Name the token's owner with --user: there is no active"):
            taskctl("token", "create", "ci")
        assert not ApiToken.objects.exists()

    def test_token_create_without_a_user_fails_when_several_superusers_exist(self):
        make_operator("root")
        make_operator("other-root")
        with pytest.raises(CommandError, match="there are several active superusers"):
            taskctl("token", "create", "ci")
        assert not ApiToken.objects.exists()

    def test_token_create_sets_the_named_owner_and_scope(self):
        make_viewer("ops")
        data = taskctl_json("token", "create", "ci-deploy", "--user", "ops", "--scope", "operate")
        assert ApiToken.objects.values_list("user__username", "scope").get() == ("ops", "operate")
        assert (data["user"], data["scope"]) == ("ops", "operate")

    def test_token_create_for_a_user_who_is_not_staff_fails_and_creates_nothing(self):
        make_user("visitor", staff=False)
        with pytest.raises(CommandError, match="visitor is not an active staff user"):
            taskctl("token", "create", "ci", "--user", "visitor")
        assert not ApiToken.objects.exists()

    def test_token_create_with_an_unknown_scope_fails(self):
        make_operator("root")
        with pytest.raises(CommandError, match="invalid choice: 'everything'"):
            taskctl("token", "create", "ci", "--scope", "everything")
        assert not ApiToken.objects.exists()

    def test_token_list_shows_each_tokens_owner_and_scope(self):
        make_token("ci", user=make_viewer("ops"), scope="operate")
        (row,) = taskctl_json("token", "list")
        assert (row["name"], row["user"], row["scope"]) == ("ci", "ops", "operate")
        assert taskctl("token", "list").split()[:4] == ["PREFIX", "NAME", "USER", "SCOPE"]

    def test_token_revoke_by_name(self):
        plain = make_token("ci")
        taskctl("token", "revoke", "ci")
        assert auth_tokens.authenticate(plain) is None

    def test_token_revoke_of_an_unknown_token_fails(self):
        with pytest.raises(CommandError, match="No live token"):
            taskctl("token", "revoke", "nope")

    def test_token_create_for_an_unknown_user_fails_and_creates_nothing(self):
        with pytest.raises(CommandError, match="No user is named 'ghost'"):
            taskctl("token", "create", "ci", "--user", "ghost")
        assert not ApiToken.objects.exists()


def run(*args: str) -> subprocess.CompletedProcess:
    return run_python("manage.py", "taskctl", *args)


@pytest.mark.django_db(transaction=True)
class TestSubprocess:
    def test_enqueue_prints_json_for_scripts(self):
        # A process of its own knows the tasks of the installed apps (taskweb.tasks).
        done = run("enqueue", "taskweb.tasks.resize_image", "--args", '["a.png", 2, 3]', "--json")
        job = Job.objects.get(pk=json.loads(done.stdout)["id"])
        assert (done.returncode, job.args) == (0, ["a.png", 2, 3])

    def test_bad_input_exits_non_zero_with_the_reason_on_stderr(self):
        done = run("enqueue", "taskweb.tasks.flaky", "--queue", "typo")
        assert (done.returncode, "Queue 'typo' does not exist" in done.stderr) == (1, True)

    def test_an_unknown_subcommand_exits_non_zero_with_usage(self):
        done = run("frobnicate")
        assert (done.returncode != 0, "invalid choice" in done.stderr) == (True, True)

    def test_jobs_list_prints_a_table_for_people(self):
        make_job()
        assert run("jobs", "list").stdout.split()[:3] == ["ID", "QUEUE", "TASK"]

    def test_the_readmes_token_line_gives_a_token_that_may_change_queues(self):
        make_operator("admin")
        readme = (ROOT / "README.md").read_text()
        line = next(line for line in readme.splitlines() if line.startswith("TOKEN=$("))
        script = line.replace(".venv/bin/python", sys.executable) + '\necho "$TOKEN"'
        done = subprocess.run(
            ["bash", "-c", script], cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=60
        )
        token = done.stdout.strip()
        assert ApiClient(token=token).post("/queues", {"name": "mail"}).status_code == 201
