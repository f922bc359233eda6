"""``manage.py taskctl``: steer queues, jobs, dead letters, workers and tokens.

Parses arguments and prints; what each subcommand does is in ``queues.cli``.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from queues import cli
from queues.auth_tokens import TokenError
from queues.exceptions import TaskwebError
from queues.models import ApiToken, TokenScope
from queues.states import Status


def _limits(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--concurrency", type=int, help="Most jobs running at once across all workers.")
    parser.add_argument("--rate-limit", type=float, help="Most job starts per second.")
    parser.add_argument("--max-attempts", type=int, help="Default attempts for new jobs.")
    parser.add_argument("--timeout", type=int, help="Default seconds one attempt may run.")
    parser.add_argument("--retention", type=float, help="Seconds finished jobs are kept.")
    parser.add_argument(
        "--encrypt",
        action=argparse.BooleanOptionalAction,
        help="Store the payloads of new jobs encrypted (needs the key variable, see README).",
    )


def _viewer(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--user",
        help="Show encrypted payloads in the clear as this user, who needs queues.view_payloads.",
    )


def _dead_letter_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue")
    parser.add_argument("--task")
    parser.add_argument(
        "--error-type",
        help="Class path of the last error: builtins.KeyError, queues.exceptions.WorkerLost...",
    )


class Command(BaseCommand):
    help = "Steer Taskweb: enqueue, stats, queues, jobs, dlq, workers, schedules, workflows, keys, token."

    def add_arguments(self, parser: CommandParser) -> None:
        common = argparse.ArgumentParser(add_help=False)
        common.add_argument("--json", action="store_true", help="Print JSON for scripts instead of a table.")
        sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

        enqueue = sub.add_parser("enqueue", parents=[common], help="Enqueue a job of a registered task.")
        enqueue.add_argument("task", help="Dotted path of the task, e.g. taskweb.tasks.send_email.")
        # "args" is Django's own name for positional arguments: keep clear of it.
        enqueue.add_argument("--args", dest="job_args", help="JSON array, e.g. '[1, \"two\"]'.")
        enqueue.add_argument("--kwargs", dest="job_kwargs", help='JSON object, e.g. \'{"to": "a@b.c"}\'.')
        enqueue.add_argument("--queue", default="default")
        enqueue.add_argument("--priority", default="normal", help="-100..100 or critical/high/normal/low.")
        enqueue.add_argument("--delay", type=float, help="Seconds from now before it may run.")
        enqueue.add_argument("--run-at", help="ISO time with offset, e.g. 2026-01-01T09:00:00+00:00.")
        enqueue.add_argument("--max-attempts", type=int)
        enqueue.add_argument("--timeout", type=int)
        enqueue.add_argument("--idempotency-key")
        enqueue.add_argument("--callback-url", help="Receives the final outcome as a signed POST.")

        sub.add_parser("stats", parents=[common], help="Job counts by queue and status, workers, throughput.")

        queues = sub.add_parser("queues", help="List, create, update, pause, resume, purge, delete queues.")
        qsub = queues.add_subparsers(dest="action", required=True, metavar="ACTION")
        qsub.add_parser("list", parents=[common])
        for action in ("create", "update"):
            p = qsub.add_parser(action, parents=[common])
            p.add_argument("name")
            _limits(p)
        for action in ("pause", "resume", "purge", "delete"):
            qsub.add_parser(action, parents=[common]).add_argument("name")

        jobs = sub.add_parser("jobs", help="List, show, cancel, retry jobs.")
        jsub = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
        jlist = jsub.add_parser("list", parents=[common])
        jlist.add_argument("--queue")
        jlist.add_argument("--status", choices=Status.values)
        jlist.add_argument("--task")
        jlist.add_argument(
            "--search",
            help="#id, or text in the task path or the arguments' JSON (encrypted arguments cannot match).",
        )
        jlist.add_argument("--limit", type=int, default=cli.LIST_LIMIT)
        _viewer(jlist)
        for action in ("show", "cancel", "retry"):
            jsub.add_parser(action, parents=[common]).add_argument("id")
        _viewer(jsub.choices["show"])

        dlq = sub.add_parser("dlq", help="List, replay, delete dead letters.")
        dsub = dlq.add_subparsers(dest="action", required=True, metavar="ACTION")
        dlist = dsub.add_parser("list", parents=[common])
        _dead_letter_filters(dlist)
        dlist.add_argument("--limit", type=int, default=cli.LIST_LIMIT)
        _viewer(dlist)
        replay = dsub.add_parser(
            "replay", parents=[common], help="Replay job ids, or --all matching the filters."
        )
        replay.add_argument("ids", nargs="*", metavar="JOB_ID")
        replay.add_argument("--all", action="store_true")
        _dead_letter_filters(replay)
        dsub.add_parser("delete", parents=[common]).add_argument("ids", nargs="+", metavar="JOB_ID")

        workers = sub.add_parser("workers", parents=[common], help="Workers and what they run.")
        workers.add_argument("--status", choices=["alive", "stopped", "lost"])

        schedules = sub.add_parser("schedules", help="List schedules or run one now.")
        ssub = schedules.add_subparsers(dest="action", required=True, metavar="ACTION")
        ssub.add_parser("list", parents=[common])
        ssub.add_parser("run", parents=[common]).add_argument("name")

        keys = sub.add_parser("keys", help="Payload encryption keys.")
        ksub = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
        rotate = ksub.add_parser(
            "rotate", parents=[common], help="Re-encrypt stored payloads under the first key, in batches."
        )
        rotate.add_argument("--batch", type=int, default=500, help="Jobs per transaction (default 500).")
        rotate.add_argument("--max-batches", type=int, help="Stop after this many batches; run again later.")
        workflows = sub.add_parser("workflows", help="List, show, cancel workflows; retry a step.")
        wsub = workflows.add_subparsers(dest="action", required=True, metavar="ACTION")
        wlist = wsub.add_parser("list", parents=[common])
        wlist.add_argument("--status", choices=["running", "finished"])
        wlist.add_argument("--limit", type=int, default=cli.LIST_LIMIT)
        for action in ("show", "cancel"):
            wsub.add_parser(action, parents=[common]).add_argument("id")
        wretry = wsub.add_parser("retry", parents=[common], help="Run a finished step again.")
        wretry.add_argument("id")
        wretry.add_argument("step", help="The step's name.")

        token = sub.add_parser("token", help="Create, revoke, list API / TCP tokens.")
        tsub = token.add_subparsers(dest="action", required=True, metavar="ACTION")
        create = tsub.add_parser("create", parents=[common])
        create.add_argument("name")
        create.add_argument(
            "--user",
            help="Username the token acts for, never exceeding their permissions "
            "(default: the only superuser).",
        )
        create.add_argument(
            "--scope",
            choices=TokenScope.values,
            default=TokenScope.READ,
            help=f"{ApiToken._meta.get_field('scope').help_text} (default read)",
        )
        tsub.add_parser("revoke", parents=[common]).add_argument("token", help="Token prefix or name.")
        tsub.add_parser("list", parents=[common])

    def handle(self, *args: Any, **options: Any) -> None:
        key = (options["command"], options["action"]) if options.get("action") else (options["command"],)
        limit = options.get("limit")
        if limit is not None and not 1 <= limit <= 10_000:
            raise CommandError(f"--limit must be 1..10000, not {limit}.")
        try:
            answer = cli.HANDLERS[key](options)
        except (TaskwebError, TokenError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(cli.render(answer, options.get("json", False)))
        if answer.note:
            self.stderr.write(answer.note)
