"""``GET /metrics``: the whole cluster in Prometheus text format.

Every number is read from the database at scrape time (job counts from the
per-minute rollup that workers write as jobs finish, depth and age from the jobs
table, workers from their heartbeats), so any web process answers for every
worker and every other web process; scraping one of them is enough.
"""

from __future__ import annotations

import hmac
import math
from collections import Counter, defaultdict
from collections.abc import Iterator

from django.db import DatabaseError
from django.db.models import Count, F, Min, Q, QuerySet, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from .conf import conf
from .models import (
    Circuit,
    CircuitState,
    Job,
    MinuteStat,
    Queue,
    RuntimeBucket,
    Worker,
    Workflow,
    WorkflowStatus,
)
from .states import TERMINAL, WAITING, Status

COUNTERS = {
    "enqueued": "Jobs enqueued.",
    "succeeded": "Attempts that succeeded.",
    "failed": "Attempts that failed (raised, timed out or lost their worker).",
    "retried": "Failed attempts that were scheduled to run again.",
    "dead": "Jobs that ran out of attempts or failed for good and went to the dead letters.",
}
LABELS = ["queue", "task"]


class ClusterCollector:
    """Collects at scrape time; registered in a fresh registry per request."""

    def collect(self) -> Iterator[Metric]:
        yield from self._job_counters()
        yield self._runtime_histogram()
        yield from self._queue_gauges()
        yield from self._cluster_gauges()
        yield from self._workflows()

    def _job_counters(self) -> Iterator[Metric]:
        totals = (
            MinuteStat.objects.values("queue_name", "task_path")
            .annotate(**{name: Sum(name) for name in COUNTERS})
            .order_by("queue_name", "task_path")
        )
        families = {
            name: CounterMetricFamily(f"taskweb_jobs_{name}", help_text, labels=LABELS)
            for name, help_text in COUNTERS.items()
        }
        for row in totals:
            for name, family in families.items():
                family.add_metric([row["queue_name"], row["task_path"]], row[name] or 0)
        yield from families.values()

    def _runtime_histogram(self) -> Metric:
        family = HistogramMetricFamily(
            "taskweb_job_runtime_seconds", "Run time of finished attempts.", labels=LABELS
        )
        counts: dict[tuple[str, str], dict[float, int]] = defaultdict(dict)
        for queue, task, le, count in (
            RuntimeBucket.objects.values_list("queue_name", "task_path", "le")
            .annotate(n=Sum("count"))
            .order_by()
        ):
            counts[(queue, task)][le] = count
        sums = {
            (row["queue_name"], row["task_path"]): row["total"]
            for row in MinuteStat.objects.values("queue_name", "task_path").annotate(total=Sum("runtime_sum"))
        }
        for key in sorted(counts):
            bounds = sorted({*RuntimeBucket.BOUNDS, *counts[key]})
            cumulative, buckets = 0, []
            for bound in bounds:
                cumulative += counts[key].get(bound, 0)
                buckets.append(("+Inf" if math.isinf(bound) else repr(bound), cumulative))
            family.add_metric(list(key), buckets, sum_value=sums.get(key) or 0.0)
        return family

    def _queue_gauges(self) -> Iterator[Metric]:
        now = timezone.now()
        names = dict(Queue.objects.values_list("id", "name"))
        due = dict.fromkeys(names, (0, None))
        for queue_id, count, oldest in (
            Job.objects.filter(status__in=WAITING, run_after__lte=now)
            .values_list("queue_id")
            .annotate(n=Count("id"), oldest=Min("run_after"))
            .order_by()
        ):
            due[queue_id] = (count, oldest)
        depth = GaugeMetricFamily("taskweb_queue_depth", "Jobs due to run and not started.", labels=["queue"])
        age = GaugeMetricFamily(
            "taskweb_queue_oldest_job_age_seconds",
            "How long the oldest due job has waited (0 when none waits).",
            labels=["queue"],
        )
        for queue_id, (count, oldest) in sorted(due.items(), key=lambda item: names[item[0]]):
            depth.add_metric([names[queue_id]], count)
            age.add_metric([names[queue_id]], (now - oldest).total_seconds() if oldest else 0.0)
        yield depth
        yield age
        yield self._per_queue(
            "taskweb_queue_scheduled",
            "Jobs waiting for a later time.",
            names,
            Job.objects.filter(status=Status.SCHEDULED, run_after__gt=now),
        )
        yield self._per_queue(
            "taskweb_queue_reserved",
            "Jobs claimed by a worker whose code has not started yet.",
            names,
            Job.objects.filter(status=Status.RESERVED),
        )
        yield self._per_queue(
            "taskweb_queue_running", "Jobs running now.", names, Job.objects.filter(status=Status.RUNNING)
        )
        yield self._jobs_by_status(names)
        yield self._workers_per_queue(names)
        paused = GaugeMetricFamily("taskweb_queue_paused", "1 when the queue is paused.", labels=["queue"])
        for name, is_paused in Queue.objects.values_list("name", "paused").order_by("name"):
            paused.add_metric([name], int(is_paused))
        yield paused

    @staticmethod
    def _per_queue(name: str, help_text: str, names: dict[int, str], jobs: QuerySet[Job]) -> Metric:
        counts = dict(jobs.values_list("queue_id").annotate(n=Count("id")).order_by())
        family = GaugeMetricFamily(name, help_text, labels=["queue"])
        for queue_id, queue_name in sorted(names.items(), key=lambda item: item[1]):
            family.add_metric([queue_name], counts.get(queue_id, 0))
        return family

    @staticmethod
    def _jobs_by_status(names: dict[int, str]) -> Metric:
        """Jobs of each queue in every status that can still run, one series per status.

        The statuses come from the enum, so a new one shows up here, and on dashboards
        that group by the label, without naming it anywhere. Finished statuses are left
        out: they only grow until pruned, and counting them would read the whole table
        at every scrape.
        """
        unfinished = [status for status in Status if status not in TERMINAL]
        counts = {
            (queue_id, status): n
            for queue_id, status, n in Job.objects.filter(status__in=unfinished)
            .values_list("queue_id", "status")
            .annotate(n=Count("id"))
            .order_by()
        }
        family = GaugeMetricFamily(
            "taskweb_queue_jobs",
            "Jobs by status, for the statuses that can still run.",
            labels=["queue", "status"],
        )
        for queue_id, queue_name in sorted(names.items(), key=lambda item: item[1]):
            for status in unfinished:
                family.add_metric([queue_name, status.value], counts.get((queue_id, status.value), 0))
        return family

    @staticmethod
    def _workers_per_queue(names: dict[int, str]) -> Metric:
        """Live workers that take each queue's jobs: a queue with work and none of them is stuck."""
        every_queue, named = 0, Counter[str]()
        for queues in Worker.objects.alive().values_list("queues", flat=True):
            if queues:
                named.update(set(queues))
            else:
                every_queue += 1  # started without --queues: it takes jobs from all of them
        family = GaugeMetricFamily(
            "taskweb_queue_workers", "Live workers that take jobs from the queue.", labels=["queue"]
        )
        for queue_name in sorted(names.values()):
            family.add_metric([queue_name], every_queue + named[queue_name])
        return family

    def _cluster_gauges(self) -> Iterator[Metric]:
        alive = Worker.objects.alive()
        workers = GaugeMetricFamily("taskweb_workers_alive", "Worker processes heartbeating now.")
        workers.add_metric([], alive.count())
        yield workers
        slots = GaugeMetricFamily("taskweb_worker_slots", "Jobs the live workers can run at once.")
        slots.add_metric([], alive.aggregate(total=Sum("concurrency"))["total"] or 0)
        yield slots
        circuits = GaugeMetricFamily(
            "taskweb_circuit_open",
            "1 while a task's circuit breaker holds it back.",
            labels=["task", "state"],
        )
        for task, state in Circuit.objects.exclude(state=CircuitState.CLOSED).values_list(
            "task_path", "state"
        ):
            circuits.add_metric([task, state], 1)
        yield circuits

    def _workflows(self) -> Iterator[Metric]:
        """Workflows by status, the steps still to finish, and the callbacks fired, in one query."""
        done = Q(finished_at__isnull=False)
        short = Q(succeeded__lt=F("total"))
        by_status = {
            WorkflowStatus.RUNNING: ~done,
            WorkflowStatus.SUCCEEDED: done & ~short,
            WorkflowStatus.FAILED: done & short & Q(cancelled_at__isnull=True),
            WorkflowStatus.CANCELLED: done & short & Q(cancelled_at__isnull=False),
        }
        # Named n_*: an aggregate may not share a name with a field.
        counts = Workflow.objects.aggregate(
            **{f"n_{status.value}": Count("id", filter=where) for status, where in by_status.items()},
            n_unfinished=Sum(F("total") - F("succeeded") - F("dead") - F("cancelled"), filter=~done),
            **{
                f"n_{name}": Count("id", filter=Q(**{f"{name}_fired_at__isnull": False}))
                for name in Workflow.CALLBACKS
            },
        )
        workflows = GaugeMetricFamily("taskweb_workflows", "Workflows by status.", labels=["status"])
        for status in WorkflowStatus:
            workflows.add_metric([status.value], counts[f"n_{status.value}"])
        yield workflows
        steps = GaugeMetricFamily(
            "taskweb_workflow_steps_unfinished", "Steps of running workflows not finished yet."
        )
        steps.add_metric([], counts["n_unfinished"] or 0)
        yield steps
        fired = CounterMetricFamily(
            "taskweb_workflow_callbacks_fired",
            "Workflow callbacks enqueued (each once).",
            labels=["callback"],
        )
        for name in Workflow.CALLBACKS:
            fired.add_metric([name.removeprefix("on_")], counts[f"n_{name}"])
        yield fired


def _authorised(request: HttpRequest) -> bool:
    """With QUEUES_METRICS_TOKEN set, scrapers must send it as a bearer token."""
    token = conf.QUEUES_METRICS_TOKEN
    if not token:
        return True
    sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(sent.encode(), token.encode())


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _authorised(request):
        return HttpResponse("A bearer token is required.\n", status=401, content_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ClusterCollector())
    # Plain text for Prometheus; OpenMetrics when the scraper asks for it.
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    try:
        body = encoder(registry)
    except DatabaseError as exc:
        message = f"The database is unreachable: {type(exc).__name__}\n"
        return HttpResponse(message, status=503, content_type="text/plain")
    return HttpResponse(body, content_type=content_type)
