"""What each ``taskctl`` subcommand does, and how its answer is shown.

Each handler takes the parsed options and returns an ``Answer``: the data (printed
as JSON with ``--json``, for scripts) plus how to show it to people (a table or a
sentence). The management command only parses arguments and prints.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from . import (
    auth_tokens,
    bounds,
    encryption,
    lifecycle,
    rules,
    scheduler,
    serializers,
    storable,
    values,
    webhooks,
    workflow_data,
)
from .exceptions import InvalidJob, JobNotFound, JobStateError
from .filters import DeadLetterFilter, JobFilter
from .models import ApiToken, DeadLetter, Job, Schedule, Workflow
from .states import Status

LIST_LIMIT = 50


@dataclass
class Answer:
    data: Any
    columns: Sequence[str] = ()
    rows: list[dict[str, Any]] | None = None
    text: str = ""
    extra: list[str] = field(default_factory=list)  # lines printed after a table
    note: str | None = None  # what the answer leaves out and why; printed to stderr, even with --json


def render(answer: Answer, as_json: bool) -> str:
    if as_json:
        return json.dumps(answer.data, indent=2, default=_json_default)
    parts = []
    if answer.rows is not None:
        parts.append(table(answer.rows, answer.columns))
    if answer.text:
        parts.append(answer.text)
    parts.extend(answer.extra)
    return "\n".join(parts)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    text = str(value).replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."


def table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    if not rows:
        return "(none)"
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(column), *(len(line[i]) for line in cells)) for i, column in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)) for line in cells]
    return "\n".join(line.rstrip() for line in lines)


def json_option(text: str | None, what: str, kind: type) -> Any:
    if text is None:
        return kind()
    try:
        value = storable.loads(text)
    except storable.Unstorable as exc:
        raise InvalidJob(f"--{what} cannot be stored: {exc}", what) from None
    except ValueError as exc:
        raise InvalidJob(f"--{what} is not valid JSON: {exc}", what) from None
    if not isinstance(value, kind):
        raise InvalidJob(f"--{what} must be a JSON {'array' if kind is list else 'object'}.", what)
    return value


def reveals(o: dict[str, Any]) -> bool:
    """``--user NAME``: show encrypted payloads in the clear, when NAME may see them."""
    name = o.get("user")
    if not name:
        return False
    user = get_user_model().objects.filter(username=name).first()
    if user is None:
        raise InvalidJob(f"No user is named {name!r}.", "user")
    if not rules.sees_payloads(user):
        raise InvalidJob(
            f"{name} may not see encrypted payloads: that needs the {rules.RULES['payload.view'].permission} "
            "permission (and active staff status).",
            "user",
        )
    return True


def job_id(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise InvalidJob(f"{text!r} is not a job id.", "id")
    return int(text)


# --- handlers ------------------------------------------------------------------------

JOB_COLUMNS = ("id", "queue", "task", "status", "priority", "attempts", "enqueued_at", "last_error")


def enqueue(o: dict[str, Any]) -> Answer:
    if o["delay"] is not None and o["run_at"] is not None:
        raise InvalidJob("Give either --delay or --run-at, not both.", "run_at")
    run_after = None
    if o["delay"] is not None:
        run_after = timezone.now() + bounds.delay(o["delay"], "--delay")
    if o["run_at"] is not None:
        try:
            run_after = parse_datetime(o["run_at"])
        except ValueError:  # well formed, but no such time (month 13, year 0)
            run_after = None
        if run_after is None or timezone.is_naive(run_after):
            raise InvalidJob(f"--run-at {o['run_at']!r} is not an ISO time with a UTC offset.", "run_at")
        bounds.run_after(run_after, field="--run-at")
    meta = {"callback_url": webhooks.validate_callback_url(o["callback_url"])} if o["callback_url"] else {}
    job, created = lifecycle.enqueue(
        values.JobSpec(
            task_path=o["task"],
            args=json_option(o["job_args"], "args", list),
            kwargs=json_option(o["job_kwargs"], "kwargs", dict),
            queue=o["queue"],
            priority=o["priority"],
            run_after=run_after,
            max_attempts=o["max_attempts"],
            timeout=o["timeout"],
            idempotency_key=o["idempotency_key"],
            meta=meta,
        )
    )
    data = {**serializers.job_out(job), "created": created}
    verb = "Enqueued" if created else "Already enqueued (same idempotency key):"
    return Answer(data, text=f"{verb} job {job.pk} ({job.task_path} on {data['queue']}, {job.status}).")


def stats(o: dict[str, Any]) -> Answer:
    data = serializers.stats()
    rows = [{"queue": q["name"], "paused": q["paused"], **q["counts"]} for q in data["queues"]]
    rates = ", ".join(f"{k} {v}" for k, v in data["last_minute"].items())
    workers = ", ".join(f"{k} {v}" for k, v in data["workers"].items())
    return Answer(
        data,
        columns=("queue", "paused", *data["counts"]),
        rows=rows,
        extra=[f"Dead letters: {data['dead_letters']}", f"Workers: {workers}", f"Last minute: {rates}"],
    )


QUEUE_COLUMNS = (
    "name",
    "paused",
    "concurrency",
    "rate_limit",
    "max_attempts",
    "timeout",
    "queued",
    "reserved",
    "running",
)


def _queue_rows(data: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**q, **q["counts"]} for q in data]


def queues_list(o: dict[str, Any]) -> Answer:
    data = serializers.queues_with_counts()
    return Answer(data, columns=QUEUE_COLUMNS, rows=_queue_rows(data))


def _limits(o: dict[str, Any]) -> dict[str, Any]:
    return {name: o[name] for name in lifecycle.SETTINGS if o.get(name) is not None}


def queues_create(o: dict[str, Any]) -> Answer:
    queue = lifecycle.create_queue(o["name"], **_limits(o))
    return Answer(serializers.queue_out(queue), text=f"Created queue {queue.name}.")


def queues_update(o: dict[str, Any]) -> Answer:
    limits = _limits(o)
    if not limits:
        raise InvalidJob("Nothing to change: give at least one of --concurrency, --rate-limit, ...", "name")
    queue = lifecycle.update_queue(o["name"], **limits)
    return Answer(serializers.queue_out(queue), text=f"Updated queue {queue.name}.")


def queues_pause(o: dict[str, Any]) -> Answer:
    queue = lifecycle.set_paused(o["name"], True)
    return Answer(serializers.queue_out(queue), text=f"Paused queue {queue.name}.")


def queues_resume(o: dict[str, Any]) -> Answer:
    queue = lifecycle.set_paused(o["name"], False)
    return Answer(serializers.queue_out(queue), text=f"Resumed queue {queue.name}.")


def queues_purge(o: dict[str, Any]) -> Answer:
    count = lifecycle.purge_queue(o["name"])
    return Answer({"count": count}, text=f"Deleted {count} waiting jobs from {o['name']}.")


def queues_delete(o: dict[str, Any]) -> Answer:
    count = lifecycle.delete_queue(o["name"])
    return Answer({"count": count}, text=f"Deleted queue {o['name']} and its {count} jobs.")


def jobs_list(o: dict[str, Any]) -> Answer:
    wanted = JobFilter(queue=o["queue"], status=o["status"], task=o["task"], q=o["search"])
    jobs = wanted.queryset(Job.objects.select_related("queue")).order_by("-pk")
    reveal = reveals(o)
    data = [serializers.job_out(job, reveal=reveal) for job in jobs[: o["limit"]]]
    return Answer(data, columns=JOB_COLUMNS, rows=data, note=wanted.search_note(Job.objects.all()))


def jobs_show(o: dict[str, Any]) -> Answer:
    data = serializers.job_detail(job_id(o["id"]), reveals(o))
    stored = data["offloaded"]
    hidden = {"errors", "offloaded"} | ({"args", "kwargs"} if stored["arguments"] else set())
    hidden |= {"result"} if stored["result"] else set()
    lines = [f"{key}: {_cell(value)}" for key, value in data.items() if key not in hidden]
    for part, where in stored.items():
        if where:  # too large to print here: where it is, and how to get it
            lines.append(
                f"{part}: {where['size']:,} bytes in {where['storage']}:{where['name']} "
                f"(taskctl jobs payload {data['id']} {part})"
            )
    for attempt in data["errors"]:
        lines.append(
            f"attempt {attempt['number']} on {attempt['worker_id'] or '-'}: {attempt['outcome']}"
            + (f" {attempt['error_type']}: {attempt['error_message']}" if attempt["error_type"] else "")
        )
        if attempt["traceback"]:
            lines.append(attempt["traceback"].rstrip())
    return Answer(data, text="\n".join(lines))


def jobs_payload(o: dict[str, Any]) -> Answer:
    job = Job.objects.filter(id=job_id(o["id"])).first()
    if job is None:
        raise JobNotFound(o["id"])
    if encryption.is_encrypted(job) and not reveals(o):
        raise InvalidJob(
            f"Job {job.pk}'s payloads are encrypted: print them with --user NAME, a user with the "
            f"{rules.RULES['payload.view'].permission} permission.",
            "user",
        )
    try:
        text = serializers.payload_text(job, o["part"])
    except encryption.PayloadKeyError as exc:
        raise InvalidJob(f"Cannot decrypt job {job.pk}'s {o['part']}: {exc}.", "keys") from None
    return Answer(json.loads(text), text=text)


def jobs_cancel(o: dict[str, Any]) -> Answer:
    job = lifecycle.cancel(job_id(o["id"]))
    return Answer(serializers.job_detail(job.pk), text=f"Cancelled job {job.pk}.")


def jobs_retry(o: dict[str, Any]) -> Answer:
    job = lifecycle.retry(job_id(o["id"]), by="taskctl")
    return Answer(serializers.job_detail(job.pk), text=f"Job {job.pk} is queued again.")


DLQ_COLUMNS = ("id", "job_id", "queue", "task", "reason", "error_type", "error_message", "created_at")


def _dead_letters(o: dict[str, Any]) -> DeadLetterFilter:
    return DeadLetterFilter(queue=o["queue"], task=o["task"], error_type=o["error_type"])


def _dead_letter_rows(o: dict[str, Any]) -> Any:
    return _dead_letters(o).queryset(DeadLetter.objects.all()).order_by("-pk")[: o["limit"]]


def dlq_list(o: dict[str, Any]) -> Answer:
    reveal = reveals(o)
    data = [serializers.dead_letter_out(letter, reveal) for letter in _dead_letter_rows(o)]
    return Answer(data, columns=DLQ_COLUMNS, rows=data)


def dlq_replay(o: dict[str, Any]) -> Answer:
    """Replay the given job ids, or with --all every dead letter matching the filters."""
    if bool(o["ids"]) == bool(o["all"]):
        raise InvalidJob("Give job ids to replay, or --all (with optional filters), not both.", "ids")
    if o["all"]:
        count = lifecycle.replay_many(_dead_letters(o).jobs(), by="taskctl")
        return Answer({"count": count}, text=f"Replayed {count} dead jobs.")
    ids = _all_dead(o["ids"], "replay")
    count = lifecycle.replay_many(Job.objects.filter(pk__in=ids), by="taskctl")
    return Answer({"count": count, "ids": ids}, text=f"Replayed {count} dead jobs.")


def _all_dead(texts: list[str], action: str) -> list[int]:
    """The job ids, once each is known to be dead: one bad id and nothing is changed."""
    ids = [job_id(text) for text in texts]
    statuses = dict(Job.objects.filter(pk__in=ids).values_list("pk", "status"))
    for pk in ids:
        if pk not in statuses:
            raise JobNotFound(pk)
        if statuses[pk] != Status.DEAD:
            raise JobStateError(pk, action, statuses[pk], frozenset({Status.DEAD}))
    return ids


def dlq_delete(o: dict[str, Any]) -> Answer:
    count = lifecycle.delete_jobs(_all_dead(o["ids"], "delete"), dead_only=True)
    return Answer({"count": count}, text=f"Deleted {count} dead jobs.")


WORKER_COLUMNS = (
    "id",
    "status",
    "queues",
    "concurrency",
    "reserved",
    "running",
    "jobs_done",
    "jobs_failed",
    "last_heartbeat",
)


def workers(o: dict[str, Any]) -> Answer:
    data = serializers.workers_with_running(o["status"])
    return Answer(data, columns=WORKER_COLUMNS, rows=data)


SCHEDULE_COLUMNS = ("id", "name", "cron", "task", "queue", "enabled", "next_run_at", "last_run_at")


def schedules_list(o: dict[str, Any]) -> Answer:
    data = [serializers.schedule_out(s) for s in Schedule.objects.select_related("queue")]
    return Answer(data, columns=SCHEDULE_COLUMNS, rows=data)


def schedules_run(o: dict[str, Any]) -> Answer:
    schedule = Schedule.objects.select_related("queue").filter(name=o["name"]).first()
    if schedule is None:
        raise InvalidJob(f"No schedule is named {o['name']!r}.", "name")
    job = scheduler.run_now(schedule)
    return Answer(serializers.job_out(job), text=f"Enqueued job {job.pk} for schedule {schedule.name}.")


def keys_rotate(o: dict[str, Any]) -> Answer:
    """Re-encrypt stored payloads under the first key, in batches; safe to stop and run again."""
    if not 1 <= o["batch"] <= 10_000:
        raise InvalidJob(f"--batch must be 1..10000, not {o['batch']}.", "batch")
    if o["max_batches"] is not None and o["max_batches"] < 1:
        raise InvalidJob(f"--max-batches must be at least 1, not {o['max_batches']}.", "max_batches")
    try:
        done = lifecycle.rotate_keys(o["batch"], o["max_batches"])
    except encryption.PayloadKeyError as exc:
        raise InvalidJob(f"Cannot rotate: {exc}.", "keys") from None
    data = {
        "key": done.key,
        "rotated": done.rotated,
        "objects": done.objects,
        "already_current": done.already,
        "batches": done.batches,
        "failed": done.failed,
        "finished": done.finished,
    }
    lines = [
        f"Re-encrypted {done.rotated} jobs under key {done.key} in {done.batches} batches; "
        f"{done.already} were already under it."
    ]
    if done.objects:
        lines.append(f"{done.objects} offloaded payloads of theirs were stored again under it.")
    lines += [f"job {job}: {reason}" for job, reason in done.failed.items()]
    if done.failed:
        lines.append(
            f"{len(done.failed)} jobs could not be re-encrypted: add the keys they need "
            "(or make their payload storage readable), run again."
        )
    if not done.finished:
        lines.append("Stopped after --max-batches; run the command again to go on.")
    return Answer(data, text="\n".join(lines))


TOKEN_COLUMNS = ("prefix", "name", "user", "scope", "created_at", "last_used_at", "revoked_at")


def _token_out(token: ApiToken) -> dict[str, Any]:
    return {
        "prefix": token.prefix,
        "name": token.name,
        "user": token.user.get_username(),
        "scope": token.scope,
        "created_at": token.created_at,
        "last_used_at": token.last_used_at,
        "revoked_at": token.revoked_at,
    }


def token_create(o: dict[str, Any]) -> Answer:
    if o["user"]:
        user = get_user_model().objects.filter(username=o["user"]).first()
        if user is None:
            raise auth_tokens.TokenError(f"No user is named {o['user']!r}.")
    else:
        user = auth_tokens.default_owner()
    new = auth_tokens.create_token(o["name"], user=user, scope=o["scope"])
    return Answer(
        {**_token_out(new.token), "token": new.plain},
        text=f"{new.plain}\nThis is the only time the token is shown; store it now. It acts for "
        f"{user.get_username()} within the {new.token.scope} scope.",
    )


def token_revoke(o: dict[str, Any]) -> Answer:
    revoked = auth_tokens.revoke(o["token"])
    return Answer(
        [_token_out(t) for t in revoked],
        text=f"Revoked {', '.join(f'{t.name} ({t.prefix})' for t in revoked)}.",
    )


def token_list(o: dict[str, Any]) -> Answer:
    data = [_token_out(t) for t in ApiToken.objects.select_related("user")]  # revoked ones too
    return Answer(data, columns=TOKEN_COLUMNS, rows=data)


WORKFLOW_COLUMNS = ("id", "name", "status", "done", "failed", "total", "created_at", "finished_at")
STEP_COLUMNS = ("name", "job_id", "task", "status", "attempts", "depends_on", "last_error")


def workflows_list(o: dict[str, Any]) -> Answer:
    rows = Workflow.objects.all()
    if o["status"]:
        rows = rows.filter(finished_at__isnull=o["status"] == "running")
    data = [workflow_data.summary(w) for w in rows[: o["limit"]]]
    return Answer(data, columns=WORKFLOW_COLUMNS, rows=data)


def _workflow_answer(workflow: Workflow, said: str = "") -> Answer:
    data = workflow_data.detail(workflow)
    head = f"workflow {data['id']} {data['name']}".rstrip()
    progress = f"{data['status']}: {data['done']}/{data['total']} done, {data['failed']} failed"
    callbacks = [
        f"{name}: {c['task']} " + (f"fired (job {c['job_id']})" if c["fired_at"] else "not fired")
        for name, c in data["callbacks"].items()
    ]
    text = "\n".join([*([said] if said else []), f"{head}: {progress}", *callbacks])
    return Answer(data, columns=STEP_COLUMNS, rows=data["steps"], extra=[text])


def workflows_show(o: dict[str, Any]) -> Answer:
    return _workflow_answer(lifecycle.get_workflow(o["id"]))


def workflows_cancel(o: dict[str, Any]) -> Answer:
    workflow = lifecycle.cancel_workflow(o["id"])
    return _workflow_answer(workflow, f"Cancelled the unfinished steps of workflow {workflow.id}.")


def workflows_retry(o: dict[str, Any]) -> Answer:
    job = lifecycle.retry(lifecycle.step_job_id(o["id"], o["step"]), by="taskctl")
    return _workflow_answer(
        lifecycle.get_workflow(o["id"]), f"Step {o['step']} (job {job.pk}) is {job.status} again."
    )


Handler = Callable[[dict[str, Any]], Answer]


def _actions(command: str, **handlers: Handler) -> dict[tuple[str, ...], Handler]:
    return {(command, action): handler for action, handler in handlers.items()}


HANDLERS: dict[tuple[str, ...], Handler] = {
    ("enqueue",): enqueue,
    ("stats",): stats,
    ("workers",): workers,
    **_actions("queues", list=queues_list, create=queues_create, update=queues_update, delete=queues_delete),
    **_actions("queues", pause=queues_pause, resume=queues_resume, purge=queues_purge),
    **_actions("jobs", list=jobs_list, show=jobs_show, payload=jobs_payload),
    **_actions("jobs", cancel=jobs_cancel, retry=jobs_retry),
    **_actions("dlq", list=dlq_list, replay=dlq_replay, delete=dlq_delete),
    **_actions("schedules", list=schedules_list, run=schedules_run),
    **_actions("keys", rotate=keys_rotate),
    **_actions("token", create=token_create, revoke=token_revoke, list=token_list),
    **_actions("workflows", list=workflows_list, show=workflows_show),
    **_actions("workflows", cancel=workflows_cancel, retry=workflows_retry),
}
