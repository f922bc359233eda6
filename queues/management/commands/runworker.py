"""``python manage.py runworker``: claim and run jobs until stopped."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from queues import logs
from queues.autoscale import Autoscaler, parse_bounds
from queues.declared import ensure_declared_queues
from queues.models import QUEUE_NAME_VALIDATOR, Queue
from queues.runner import Worker


class Command(BaseCommand):
    help = "Run a Taskweb worker: claim jobs from the database and run them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--queues", default="", help="Comma-separated queue names (default: all).")
        parser.add_argument(
            "--concurrency",
            type=int,
            default=max(2, os.cpu_count() or 1),
            help="Jobs run at once, each in its own child process, or thread with --pool threads "
            "(default: CPU count, at least 2).",
        )
        parser.add_argument(
            "--pool",
            choices=("processes", "threads"),
            default="processes",
            help="Run jobs in child processes (default: a job past its timeout, or cancelled, is "
            "killed) or in threads of the worker (cheap for many jobs that wait on I/O; a thread "
            "cannot be killed, so such a job is only abandoned and runs on until it returns).",
        )
        parser.add_argument(
            "--prefetch",
            type=int,
            default=None,
            help="Claimed jobs that may wait (reserved) for a free child. Default: adaptive, about "
            "50 ms of work at the rate jobs finish here (hundreds of quick jobs, none of long ones).",
        )
        parser.add_argument(
            "--autoscale",
            metavar="MIN,MAX",
            default=None,
            help="Run MIN to MAX children: more while work waits, fewer once they idle "
            "(QUEUES_AUTOSCALE_IDLE seconds). Replaces --concurrency.",
        )
        parser.add_argument("--burst", action="store_true", help="Exit when no job is left to run.")
        parser.add_argument(
            "--no-listen",
            action="store_true",
            help="Poll only, no LISTEN/NOTIFY (needed behind a transaction-mode pooler).",
        )
        parser.add_argument(
            "--grace", type=float, default=None, help="Seconds to let running jobs finish on shutdown."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        logs.show_command_logs(options["verbosity"])
        queues = [name.strip() for name in options["queues"].split(",") if name.strip()] or None
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1.")
        prefetch = options["prefetch"]
        if prefetch is not None and prefetch < 0:
            raise CommandError("--prefetch must be 0 or more.")
        for name in queues or []:
            if not QUEUE_NAME_VALIDATOR.regex.match(name):
                raise CommandError(f"{name!r} is not a valid queue name.")
        ensure_declared_queues()
        if queues:
            missing = sorted(
                set(queues) - set(Queue.objects.filter(name__in=queues).values_list("name", flat=True))
            )
            if missing:
                raise CommandError(f"Unknown queue(s): {', '.join(missing)}. Create them first.")
        autoscale = None
        if options["autoscale"] is not None:
            try:
                autoscale = Autoscaler(*parse_bounds(options["autoscale"]))
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        worker = Worker(
            queues=queues,
            concurrency=autoscale.minimum if autoscale else options["concurrency"],
            autoscale=autoscale,
            prefetch=prefetch,
            burst=options["burst"],
            threads=options["pool"] == "threads",
            listen=not options["no_listen"],
        )
        if options["grace"] is not None:
            worker.grace = options["grace"]
        worker.run()
