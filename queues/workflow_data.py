"""A workflow as plain values, the same for the REST API, taskctl and the console.

Steps come in an order that respects their dependencies (each after the steps it waits
for), with each one's job state, so any door can draw the graph as a list.
"""

from __future__ import annotations

from collections import defaultdict
from graphlib import TopologicalSorter
from typing import Any

from .models import JobDependency, Workflow, WorkflowStep


def summary(workflow: Workflow) -> dict[str, Any]:
    return {
        "id": workflow.id,
        "name": workflow.name,
        "status": str(workflow.status),
        "total": workflow.total,
        "done": workflow.done,
        "succeeded": workflow.succeeded,
        "failed": workflow.failed,
        "dead": workflow.dead,
        "cancelled": workflow.cancelled,
        "percent": workflow.percent,
        "created_at": workflow.created_at,
        "finished_at": workflow.finished_at,
        "cancelled_at": workflow.cancelled_at,
        "callbacks": {
            name: {
                "task": spec["task_path"],
                "fired_at": getattr(workflow, f"{name}_fired_at"),
                "job_id": workflow.callback_jobs.get(name),
            }
            for name, spec in workflow.callbacks.items()
        },
    }


def steps(workflow: Workflow) -> list[dict[str, Any]]:
    """Every step with its job's state and the names of the steps it waits for, in order."""
    rows = WorkflowStep.objects.filter(workflow=workflow).select_related("job__queue").order_by("job_id")
    by_id = {step.job_id: step for step in rows}
    depends: dict[int, list[int]] = defaultdict(list)
    edges = JobDependency.objects.filter(job__step__workflow=workflow).order_by("job_id", "position")
    for job_id, dep_id in edges.values_list("job_id", "depends_on_id"):
        depends[job_id].append(dep_id)
    order = _stable_order(TopologicalSorter({job_id: depends[job_id] for job_id in by_id}))
    # The stage of a step: how many steps, at most, run one after another before it.
    stage: dict[int, int] = {}
    for job_id in order:
        stage[job_id] = 1 + max((stage[dep] for dep in depends[job_id] if dep in stage), default=-1)
    return [
        {
            "name": by_id[job_id].name,
            "stage": stage[job_id],
            "job_id": job_id,
            "task": by_id[job_id].job.task_path,
            "queue": by_id[job_id].job.queue.name,
            "status": by_id[job_id].job.status,
            "attempts": by_id[job_id].job.attempts,
            "depends_on": [by_id[dep].name for dep in depends[job_id] if dep in by_id],
            "pass_result": by_id[job_id].pass_result,
            "run_anyway": by_id[job_id].run_anyway,
            "last_error": by_id[job_id].job.last_error,
            "started_at": by_id[job_id].job.started_at,
            "finished_at": by_id[job_id].job.finished_at,
        }
        for job_id in order
    ]


def _stable_order(order: TopologicalSorter[int]) -> list[int]:
    """Topological order, ties broken by job id (the order the steps were given)."""
    order.prepare()
    done: list[int] = []
    while order.is_active():
        ready = sorted(order.get_ready())
        done.extend(ready)
        order.done(*ready)
    return done


def detail(workflow: Workflow) -> dict[str, Any]:
    return {**summary(workflow), "steps": steps(workflow)}
