"""Workflow steps after each transition: counters, released and cancelled dependents, callbacks.

Every transition that ends a job (``outcomes.finish``, ``operator.cancel``, quarantine) or
brings one back (``operator.retry``, ``replay``) calls in here inside its own transaction,
so a workflow's counters, its blocked steps and its callbacks never disagree with the
jobs. Workers pass only the jobs their claim flagged (``has_callback``: steps carry
``meta.workflow``), so finishing plain jobs costs nothing here.

Concurrency: the first write of each batch is the counter UPDATE of its workflows (in id
order), which holds their rows until commit. Every other transaction touching the same
workflow waits there, then reads the dependencies' statuses afresh, so two workers
finishing a step's last two dependencies at once cannot both leave it blocked, and of
several transactions meeting a callback's condition exactly one stamps it and enqueues it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime

from django.db.models import Case, F, Value, When
from django.utils import timezone

from .. import registry, webhooks
from ..engines import get_engine
from ..exceptions import InvalidJob
from ..models import Job, JobDependency, Workflow, WorkflowStep
from ..states import TERMINAL, TRANSITIONS, Status
from ..values import JobSpec
from .enqueue import enqueue

logger = logging.getLogger("queues.workflows")

COUNTER = {Status.SUCCEEDED: "succeeded", Status.DEAD: "dead", Status.CANCELLED: "cancelled"}
FAILED = frozenset({Status.DEAD, Status.CANCELLED})
HOW = {Status.DEAD: "died", Status.CANCELLED: "was cancelled"}


def finished(statuses: Mapping[int, str], now: datetime | None = None) -> None:
    """Jobs that just reached ``statuses`` (succeeded, dead or cancelled): count them in their
    workflows, release or cancel their dependents (transitively), fire callbacks that are due."""
    steps = _workflows_of(statuses)
    if not steps:
        return
    now = now or timezone.now()
    changed = {job_id: Status(statuses[job_id]) for job_id in steps}
    _count(steps, {job_id: {COUNTER[status]: 1} for job_id, status in changed.items()}, now)
    while changed:
        cancelled = _after(changed, now)
        if cancelled:
            steps.update(_workflows_of(cancelled))
            _count(steps, {job_id: {"cancelled": 1} for job_id in cancelled}, now)
            webhooks.enqueue_deliveries(cancelled)
        changed = dict.fromkeys(cancelled, Status.CANCELLED)
    _fire_due(set(steps.values()), now)


def reopened(previous: Mapping[int, str], now: datetime | None = None) -> None:
    """Jobs an operator sent back to their queue from ``previous`` statuses (retry, replay).

    A step whose own dependencies are not all satisfied waits for them again (blocked);
    the dependents it had cancelled by failing are blocked again, transitively, and run
    once it succeeds. Counters drop what these jobs had counted.
    """
    steps = _workflows_of(previous)
    if not steps:
        return
    now = now or timezone.now()
    # Lock the workflows first, as a finishing batch does, before reading any step.
    for workflow_id in sorted(set(steps.values())):
        Workflow.objects.filter(id=workflow_id).update(updated_at=now)
    deltas: dict[int, dict[str, int]] = {
        job_id: {COUNTER[Status(previous[job_id])]: -1} for job_id in steps if previous[job_id] in COUNTER
    }
    waiting = _unsatisfied(steps)
    if waiting:
        Job.objects.filter(id__in=waiting, status__in=[Status.QUEUED, Status.SCHEDULED]).update(
            status=Status.BLOCKED, updated_at=now
        )
    reblocked = _cancelled_dependents(set(steps))
    if reblocked:
        Job.objects.filter(id__in=reblocked, status__in=TRANSITIONS["reblock"]).update(
            status=Status.BLOCKED, finished_at=None, last_error="", updated_at=now
        )
        steps.update(_workflows_of(reblocked))
        for job_id in reblocked:
            deltas[job_id] = {"cancelled": -1}
    _count(steps, deltas, now)
    # Every blocked step downstream of these now waits for one more dependency; one
    # blocked again may still wait on another dependency that failed meanwhile.
    again = set(waiting) | reblocked | _blocked_dependents(steps)
    _recount(again)
    cancelled = _judge(again, now)
    if cancelled:
        finished(dict.fromkeys(cancelled, Status.CANCELLED), now)
    _fire_due(set(steps.values()), now)


def _workflows_of(job_ids: Iterable[int]) -> dict[int, int]:
    """Job id -> workflow id, for those of ``job_ids`` that are workflow steps."""
    ids = list(job_ids)
    if not ids:
        return {}
    return dict(WorkflowStep.objects.filter(job_id__in=ids).values_list("job_id", "workflow_id"))


def _count(steps: Mapping[int, int], deltas: Mapping[int, Mapping[str, int]], now: datetime) -> None:
    """Add each job's counter deltas to its workflow; workflows in id order, so that two
    transactions lock them in the same order."""
    per_workflow: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for job_id, delta in deltas.items():
        for counter, amount in delta.items():
            per_workflow[steps[job_id]][counter] += amount
    for workflow_id in sorted(per_workflow):
        changes = {name: F(name) + amount for name, amount in per_workflow[workflow_id].items() if amount}
        Workflow.objects.filter(id=workflow_id).update(updated_at=now, **changes)


def _blocked_dependents(job_ids: Iterable[int]) -> set[int]:
    return set(
        JobDependency.objects.filter(depends_on_id__in=list(job_ids), job__status=Status.BLOCKED).values_list(
            "job_id", flat=True
        )
    )


def _cancelled_dependents(job_ids: set[int]) -> set[int]:
    """Every cancelled step downstream of ``job_ids``, following cancelled steps only."""
    found: set[int] = set()
    frontier = job_ids
    while frontier:
        step = set(
            JobDependency.objects.filter(
                depends_on_id__in=list(frontier), job__status__in=TRANSITIONS["reblock"]
            ).values_list("job_id", flat=True)
        )
        frontier = step - found
        found |= frontier
    return found


def _unsatisfied(job_ids: Iterable[int]) -> list[int]:
    """Those of ``job_ids`` with a dependency that has not (yet) satisfied them."""
    edges = _edges(job_ids)
    anyway = _runs_anyway(edges)
    return [job_id for job_id, deps in edges.items() if _verdict(deps, job_id in anyway)[0] != "release"]


def _edges(job_ids: Iterable[int]) -> dict[int, list[tuple[int, str]]]:
    """Job id -> its dependencies as (id, status), in their given order."""
    edges: dict[int, list[tuple[int, str]]] = defaultdict(list)
    rows = JobDependency.objects.filter(job_id__in=list(job_ids)).order_by("job_id", "position")
    for job_id, dep_id, status in rows.values_list("job_id", "depends_on_id", "depends_on__status"):
        edges[job_id].append((dep_id, status))
    return edges


def _runs_anyway(job_ids: Iterable[int]) -> set[int]:
    anyway = WorkflowStep.objects.filter(job_id__in=list(job_ids), run_anyway=True)
    return set(anyway.values_list("job_id", flat=True))


def _verdict(deps: list[tuple[int, str]], run_anyway: bool) -> tuple[str, str]:
    """("release" | "cancel" | "wait", reason) for a step whose dependencies stand so."""
    if all(status == Status.SUCCEEDED for _, status in deps):
        return "release", ""
    if run_anyway:
        return ("release", "") if all(status in TERMINAL for _, status in deps) else ("wait", "")
    for dep_id, status in deps:
        if status in FAILED:
            return "cancel", f"dependency {dep_id} {HOW[Status(status)]}"
    return "wait", ""


def _after(changed: Mapping[int, Status], now: datetime) -> set[int]:
    """Tell the blocked dependents of ``changed`` that these dependencies finished.

    A failed dependency cancels a dependent at once (unless it runs anyway); otherwise
    its pending count drops, and only a dependent left with none is judged on all its
    dependencies. Returns the dependents cancelled.
    """
    pairs = list(
        JobDependency.objects.filter(depends_on_id__in=list(changed), job__status=Status.BLOCKED).values_list(
            "job_id", "depends_on_id"
        )
    )
    if not pairs:
        return set()
    failing = any(status in FAILED for status in changed.values())
    anyway = _runs_anyway({job_id for job_id, _ in pairs}) if failing else set()
    doomed: dict[int, str] = {}
    for job_id, dep_id in pairs:
        if changed[dep_id] in FAILED and job_id not in anyway and job_id not in doomed:
            doomed[job_id] = f"dependency {dep_id} {HOW[changed[dep_id]]}"
    fewer: dict[int, int] = defaultdict(int)
    for job_id, _ in pairs:
        if job_id not in doomed:
            fewer[job_id] += 1
    by_amount: dict[int, list[int]] = defaultdict(list)
    for job_id, amount in fewer.items():
        by_amount[amount].append(job_id)
    for amount, ids in by_amount.items():
        WorkflowStep.objects.filter(job_id__in=ids).update(pending=F("pending") - amount)
    ready = set(
        WorkflowStep.objects.filter(job_id__in=list(fewer), pending__lte=0).values_list("job_id", flat=True)
    )
    return _cancel_blocked(doomed, now) | _judge(ready, now)


def _judge(job_ids: set[int], now: datetime) -> set[int]:
    """Release or cancel each blocked step of ``job_ids`` its dependencies decide; returns
    those cancelled."""
    edges = _edges(job_ids)
    anyway = _runs_anyway(edges)
    release: list[int] = []
    doomed: dict[int, str] = {}
    for job_id, deps in edges.items():
        verdict, reason = _verdict(deps, job_id in anyway)
        if verdict == "release":
            release.append(job_id)
        elif verdict == "cancel":
            doomed[job_id] = reason
    _release(release, edges, now)
    return _cancel_blocked(doomed, now)


def _cancel_blocked(reasons: Mapping[int, str], now: datetime) -> set[int]:
    """Cancel these blocked steps, each with its reason; returns those cancelled."""
    by_reason: dict[str, list[int]] = defaultdict(list)
    for job_id, reason in reasons.items():
        by_reason[reason].append(job_id)
    cancelled: set[int] = set()
    for reason, ids in by_reason.items():
        rows = Job.objects.filter(id__in=ids, status=Status.BLOCKED)
        cancelled.update(rows.values_list("id", flat=True))
        rows.update(status=Status.CANCELLED, finished_at=now, updated_at=now, last_error=reason)
    return cancelled


def _recount(job_ids: set[int]) -> None:
    """Set each step's pending count from its dependencies' statuses (after a retry)."""
    pending: dict[int, int] = dict.fromkeys(job_ids, 0)
    rows = JobDependency.objects.filter(job_id__in=list(job_ids)).exclude(depends_on__status__in=TERMINAL)
    for job_id in rows.values_list("job_id", flat=True):
        pending[job_id] += 1
    by_amount: dict[int, list[int]] = defaultdict(list)
    for job_id, amount in pending.items():
        by_amount[amount].append(job_id)
    for amount, ids in by_amount.items():
        WorkflowStep.objects.filter(job_id__in=ids).update(pending=amount)


def _release(job_ids: list[int], edges: Mapping[int, list[tuple[int, str]]], now: datetime) -> None:
    """Blocked -> queued (scheduled while a delay it was given runs); a step that asked for
    its dependencies' results gets them prepended to its arguments first."""
    if not job_ids:
        return
    passing = set(
        WorkflowStep.objects.filter(job_id__in=job_ids, pass_result=True).values_list("job_id", flat=True)
    )
    if passing:
        dep_ids = {dep_id for job_id in passing for dep_id, _ in edges[job_id]}
        results = dict(Job.objects.filter(id__in=dep_ids).values_list("id", "result"))
        for job_id, args in Job.objects.filter(id__in=passing).values_list("id", "args"):
            deps = [results.get(dep_id) for dep_id, _ in edges[job_id]]
            given = deps[0] if len(deps) == 1 else deps
            Job.objects.filter(id=job_id, status=Status.BLOCKED).update(args=[given, *args])
    Job.objects.filter(id__in=job_ids, status__in=TRANSITIONS["unblock"]).update(
        status=Case(
            When(run_after__gt=now, then=Value(Status.SCHEDULED.value)), default=Value(Status.QUEUED.value)
        ),
        updated_at=now,
    )
    names = Job.objects.filter(id__in=job_ids).values_list("queue__name", flat=True).distinct()
    get_engine().notify(sorted(names))


def _fire_due(workflow_ids: set[int], now: datetime) -> None:
    """Stamp the end of each workflow that just finished, and enqueue each callback whose
    condition now holds; a guarded UPDATE lets one transaction only fire each."""
    sums = F("succeeded") + F("dead") + F("cancelled")
    for workflow in Workflow.objects.filter(id__in=workflow_ids).order_by("id"):
        rows = Workflow.objects.filter(id=workflow.id)
        if workflow.done >= workflow.total:
            rows.filter(finished_at=None, total__lte=sums).update(finished_at=now)
        else:
            rows.filter(finished_at__isnull=False).update(finished_at=None)
        due = {
            "on_success": workflow.succeeded >= workflow.total,
            "on_complete": workflow.done >= workflow.total,
            "on_death": workflow.dead > 0,
        }
        conditions = {
            "on_success": {"total__lte": F("succeeded")},
            "on_complete": {"total__lte": sums},
            "on_death": {"dead__gt": 0},
        }
        for name, spec in workflow.callbacks.items():
            if not due[name]:
                continue
            if rows.filter(**{f"{name}_fired_at": None}, **conditions[name]).update(
                **{f"{name}_fired_at": now}
            ):
                _enqueue_callback(workflow, name, spec)


def _enqueue_callback(workflow: Workflow, name: str, spec: Mapping[str, object]) -> None:
    """Enqueue one callback. One that can no longer be enqueued (its task's module gone,
    its queue deleted since the workflow was created) is logged, never raised: it must
    not undo the outcomes of the batch that finished the workflow."""
    task_path = str(spec["task_path"])
    try:
        job, _ = enqueue(
            JobSpec(
                task_path=task_path,
                task=registry.load(task_path),
                args=[workflow.id, *spec.get("args", [])],  # type: ignore[misc]
                kwargs=dict(spec.get("kwargs", {})),  # type: ignore[call-overload]
                queue=str(spec.get("queue", "default")),
                priority=spec.get("priority", 0),  # type: ignore[arg-type]
                meta={"workflow": workflow.id, "callback": name},
            )
        )
    except InvalidJob as exc:
        logger.error("workflow %s: its %s callback could not be enqueued: %s", workflow.id, name, exc)
        return
    workflow.callback_jobs = {**workflow.callback_jobs, name: job.id}
    Workflow.objects.filter(id=workflow.id).update(callback_jobs=workflow.callback_jobs)
