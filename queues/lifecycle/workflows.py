"""Workflows: create one (every step and edge in one transaction, with bulk inserts) or
cancel one as a whole.

What happens to the steps afterwards (released, cancelled, counted, callbacks fired)
is ``dependencies``' work, called by each transition.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from graphlib import CycleError, TopologicalSorter
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..engines import get_engine
from ..exceptions import InvalidJob, JobNotFound, WorkflowNotFound
from ..models import Job, JobDependency, Workflow, WorkflowStep
from ..states import TRANSITIONS, Status
from ..values import JobSpec, StepSpec
from . import dependencies
from .enqueue import _announce, _insert_rows, _job_fields, _validated_rows, get_queue

MAX_STEPS = 100_000
MAX_NAME = 200
INSERT_BATCH = 5000


def _check_graph(steps: Sequence[StepSpec]) -> None:
    """Step names unique and well formed, dependencies naming other steps, no cycle."""
    if not steps:
        raise InvalidJob("A workflow needs at least one step.", "steps")
    if len(steps) > MAX_STEPS:
        raise InvalidJob(f"A workflow has at most {MAX_STEPS:,} steps, not {len(steps):,}.", "steps")
    names: set[str] = set()
    for step in steps:
        if not isinstance(step.name, str) or not 1 <= len(step.name) <= MAX_NAME:
            raise InvalidJob(
                f"A step name is a string of 1 to {MAX_NAME} characters: {step.name!r}.", "steps"
            )
        if step.name in names:
            raise InvalidJob(f"Two steps are named {step.name!r}: step names are unique.", "steps")
        names.add(step.name)
        if step.job.idempotency_key is not None:
            raise InvalidJob(f"Step {step.name!r}: workflow steps take no idempotency_key.", "steps")
    for step in steps:
        for dep in step.depends_on:
            if dep not in names:
                raise InvalidJob(f"Step {step.name!r} depends on {dep!r}, which is no step.", "steps")
            if dep == step.name:
                raise InvalidJob(f"Step {step.name!r} depends on itself.", "steps")
    try:
        TopologicalSorter({step.name: step.depends_on for step in steps}).prepare()
    except CycleError as exc:
        cycle = " -> ".join(exc.args[1])
        raise InvalidJob(f"The steps depend on each other in a cycle: {cycle}.", "steps") from None


def _callback_specs(callbacks: Mapping[str, JobSpec], now: datetime) -> dict[str, dict[str, Any]]:
    """Each callback checked as a job (a workflow id first) and kept as plain values."""
    stored = {}
    for name, spec in callbacks.items():
        if name not in Workflow.CALLBACKS:
            raise InvalidJob(f"{name!r} is no callback: use {', '.join(Workflow.CALLBACKS)}.", name)
        checked = _job_fields(replace(spec, args=[0, *spec.args]), get_queue(spec.queue), now)
        stored[name] = {
            "task_path": spec.task_path,
            "args": list(spec.args),
            "kwargs": dict(spec.kwargs),
            "queue": spec.queue,
            "priority": checked["priority"],
        }
    return stored


def create_workflow(
    steps: Sequence[StepSpec], callbacks: Mapping[str, JobSpec] | None = None, name: str = ""
) -> Workflow:
    """Enqueue every step of a workflow in one transaction: all of them or none.

    Steps with dependencies are stored blocked; the others are due at once (or at their
    delay). Jobs go in with the bulk insert (COPY on PostgreSQL), steps and edges with
    bulk INSERTs, so a 10,000-step workflow costs a handful of statements.
    """
    if not isinstance(name, str) or len(name) > MAX_NAME:
        raise InvalidJob(f"A workflow name is at most {MAX_NAME} characters.", "name")
    _check_graph(steps)
    now = timezone.now()
    queues, rows = _validated_rows([step.job for step in steps], now)
    for row, step in zip(rows, steps, strict=True):
        if step.depends_on:
            row["status"] = Status.BLOCKED
    stored_callbacks = _callback_specs(callbacks or {}, now)
    engine = get_engine()
    with transaction.atomic():
        workflow = Workflow.objects.create(
            name=name, total=len(steps), callbacks=stored_callbacks, created_at=now, updated_at=now
        )
        # The claim reads this key to tell workers that a step's outcome has follow-ups.
        for row in rows:
            row["meta"] = json.dumps({**json.loads(row["meta"]), "workflow": workflow.id})
        ids = _insert_rows(engine, rows, INSERT_BATCH)
        by_name = {step.name: job_id for step, job_id in zip(steps, ids, strict=True)}
        engine.insert_rows(
            WorkflowStep._meta.db_table,
            ("job_id", "workflow_id", "name", "pass_result", "run_anyway", "pending"),
            [
                (
                    by_name[step.name],
                    workflow.id,
                    step.name,
                    step.pass_result,
                    step.run_anyway,
                    len(step.depends_on),
                )
                for step in steps
            ],
        )
        engine.insert_rows(
            JobDependency._meta.db_table,
            ("job_id", "depends_on_id", "position"),
            [
                (by_name[step.name], by_name[dep], position)
                for step in steps
                for position, dep in enumerate(step.depends_on)
            ],
        )
        _announce(engine, rows, queues, now)
    return workflow


def get_workflow(workflow_id: object) -> Workflow:
    try:
        return Workflow.objects.get(id=int(workflow_id))  # type: ignore[call-overload]
    except (TypeError, ValueError, Workflow.DoesNotExist):
        raise WorkflowNotFound(workflow_id) from None


def step_job_id(workflow_id: object, name: str) -> int:
    """The job id of the step called ``name`` in a workflow (JobNotFound if there is none)."""
    workflow = get_workflow(workflow_id)
    step = WorkflowStep.objects.filter(workflow=workflow, name=name)
    job_id = step.values_list("job_id", flat=True).first()
    if job_id is None:
        raise JobNotFound(f"{name!r} of workflow {workflow.id}")
    return job_id


def cancel_workflow(workflow_id: object) -> Workflow:
    """Cancel every step not finished yet (running attempts are stopped by their workers).

    The workflow is then complete: its on_complete callback fires, on_success never will.
    """
    workflow = get_workflow(workflow_id)
    now = timezone.now()
    with transaction.atomic():
        # Locked (PostgreSQL; SQLite holds the whole database) so that none finishes meanwhile.
        live = Job.objects.select_for_update(of=("self",)).filter(
            step__workflow_id=workflow.id, status__in=TRANSITIONS["cancel"]
        )
        cancelled = set(live.values_list("id", flat=True))
        Job.objects.filter(id__in=cancelled).update(
            status=Status.CANCELLED,
            finished_at=now,
            updated_at=now,
            lease_expires_at=None,
            last_error="workflow cancelled",
        )
        Workflow.objects.filter(id=workflow.id).update(cancelled_at=now)
        dependencies.finished(dict.fromkeys(cancelled, Status.CANCELLED), now)
    return get_workflow(workflow.id)
