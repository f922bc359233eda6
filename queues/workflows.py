"""Workflows in the Tasks style: signatures, chains, groups, and a workflow enqueued at once.

    from queues.workflows import chain, group, workflow

    run = workflow(
        chain(fetch.s(url), resize.s(), pass_result=True),
        group(thumbnail.s(size) for size in (64, 128)),
        then=publish.s(),
        on_complete=notify.s("ops"),
    ).enqueue()
    run.refresh().status, run.progress

Every step becomes one job; a step with dependencies waits (blocked) until they have
all succeeded. The whole graph is written in one transaction by
``queues.lifecycle.create_workflow``; this module only turns signatures into steps.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Union

from . import lifecycle, registry
from .compat import Task, TaskResult
from .exceptions import InvalidJob
from .models import Workflow, WorkflowStatus
from .values import JobSpec, StepSpec


@dataclass(frozen=True)
class Signature:
    """A task with its arguments, to run as one step (``task.s(*args, **kwargs)``)."""

    task: Task
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    name: str | None = None
    pass_result: bool = False
    run_anyway: bool = False

    def set(
        self, *, name: str | None = None, pass_result: bool | None = None, run_anyway: bool | None = None
    ) -> Signature:
        """A copy with a step name, or taking its dependencies' results as its first argument,
        or running once they have finished even if one died (``run_anyway``)."""
        changes = {"name": name, "pass_result": pass_result, "run_anyway": run_anyway}
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def job_spec(self) -> JobSpec:
        """This call as a job of the task's backend (queue, priority, options of ``using``)."""
        backend = self.task.get_backend()
        if not hasattr(backend, "job_spec"):
            raise InvalidJob(f"Task {self.task.module_path} does not use Taskweb's backend.", "task")
        backend.validate_task(self.task)
        return backend.job_spec(self.task, self.args, self.kwargs)


def step(task: Task, *args: Any, **kwargs: Any) -> Signature:
    """``task`` called with these arguments, as a step (what ``task.s(...)`` returns)."""
    return Signature(task, args, kwargs)


@dataclass(frozen=True)
class Chain:
    """Parts run one after another; each waits for the whole part before it."""

    parts: tuple[Part, ...]
    pass_result: bool = False


@dataclass(frozen=True)
class Group:
    """Parts run side by side; what follows a group waits for all of them."""

    parts: tuple[Part, ...]


Part = Union[Signature, Chain, Group]  # noqa: UP007  (the dataclasses above resolve it at run time)


def _parts(parts: tuple[Any, ...]) -> tuple[Part, ...]:
    """The parts given, or the items of the one iterable given (``group(s for s in ...)``)."""
    if len(parts) == 1 and not isinstance(parts[0], (Signature, Chain, Group)):
        parts = tuple(parts[0])
    for part in parts:
        if not isinstance(part, (Signature, Chain, Group)):
            raise InvalidJob(
                "A workflow part is a signature (task.s(...)), a chain or a group, "
                f"not {type(part).__name__}.",
                "steps",
            )
    return parts


def chain(*parts: Any, pass_result: bool = False) -> Chain:
    """Run ``parts`` in order; with ``pass_result`` each step gets the result of the one
    before as its first argument (after a group: the list of the group's results)."""
    return Chain(_parts(parts), pass_result)


def group(*parts: Any) -> Group:
    """Run ``parts`` side by side (also ``group(task.s(x) for x in xs)``)."""
    return Group(_parts(parts))


class Progress(NamedTuple):
    done: int
    failed: int
    total: int


class WorkflowRun:
    """A workflow enqueued: its id, status, progress and steps, read from the database."""

    def __init__(self, workflow: Workflow) -> None:
        self.workflow = workflow

    @property
    def id(self) -> int:
        return self.workflow.id

    @property
    def status(self) -> WorkflowStatus:
        return self.workflow.status

    @property
    def progress(self) -> Progress:
        return Progress(self.workflow.done, self.workflow.failed, self.workflow.total)

    def refresh(self) -> WorkflowRun:
        self.workflow.refresh_from_db()
        return self

    @property
    def job_ids(self) -> dict[str, int]:
        """Step name -> job id."""
        return dict(self.workflow.steps.order_by("job_id").values_list("name", "job_id"))

    def result(self, name: str) -> TaskResult:
        """The TaskResult of the step called ``name``."""
        job = self.workflow.steps.select_related("job").get(name=name).job
        return registry.load(job.task_path).get_result(str(job.id))

    def cancel(self) -> WorkflowRun:
        self.workflow = lifecycle.cancel_workflow(self.id)
        return self


def get_workflow(workflow_id: int) -> WorkflowRun:
    return WorkflowRun(lifecycle.get_workflow(workflow_id))


@dataclass(frozen=True)
class WorkflowDefinition:
    """What ``workflow(...)`` builds; ``enqueue()`` writes it in one transaction."""

    parts: tuple[Part, ...]
    then: Signature | None = None
    name: str = ""
    callbacks: dict[str, Signature] = field(default_factory=dict)

    def steps(self) -> list[StepSpec]:
        builder = _Builder()
        leaves = builder.add(Group(self.parts), (), False)
        if self.then is not None:
            builder.add(self.then, leaves, False)
        return builder.steps

    def enqueue(self) -> WorkflowRun:
        callbacks = {name: sig.job_spec() for name, sig in self.callbacks.items()}
        return WorkflowRun(lifecycle.create_workflow(self.steps(), callbacks, name=self.name))


def workflow(
    *parts: Any,
    then: Signature | None = None,
    name: str = "",
    on_success: Signature | None = None,
    on_complete: Signature | None = None,
    on_death: Signature | None = None,
) -> WorkflowDefinition:
    """``parts`` side by side, then ``then`` once they have all succeeded.

    Callbacks are jobs enqueued once, called with the workflow's id first: ``on_success``
    when every step has succeeded, ``on_complete`` when every step has finished (however),
    ``on_death`` when the first step dies.
    """
    given = {"on_success": on_success, "on_complete": on_complete, "on_death": on_death}
    return WorkflowDefinition(
        _parts(parts), then, name, {key: sig for key, sig in given.items() if sig is not None}
    )


class _Builder:
    """Flattens parts into steps: names made unique, each step's dependencies by name."""

    def __init__(self) -> None:
        self.steps: list[StepSpec] = []
        self.names: set[str] = set()
        self.last_number: dict[str, int] = {}  # per task name, so naming 10,000 steps stays linear

    def add(self, part: Part, deps: tuple[str, ...], pass_result: bool) -> tuple[str, ...]:
        """Add ``part`` after ``deps``; returns the names its followers wait for."""
        if isinstance(part, Signature):
            return (self._step(part, deps, pass_result),)
        if isinstance(part, Group):
            return tuple(name for child in part.parts for name in self.add(child, deps, pass_result))
        for position, child in enumerate(part.parts):
            deps = self.add(child, deps, pass_result if position == 0 else part.pass_result)
        return deps

    def _step(self, sig: Signature, deps: tuple[str, ...], pass_result: bool) -> str:
        name = sig.name
        if name is None:
            base = sig.task.name
            n = self.last_number.get(base, 0)
            name = ""
            while not name or name in self.names:  # base, base-2, base-3...
                n += 1
                name = base if n == 1 else f"{base}-{n}"
            self.last_number[base] = n
        elif name in self.names:
            raise InvalidJob(f"Two steps are named {name!r}: step names are unique.", "steps")
        self.names.add(name)
        self.steps.append(
            StepSpec(
                name=name,
                job=sig.job_spec(),
                depends_on=deps,
                pass_result=bool(deps) and (pass_result or sig.pass_result),
                run_anyway=sig.run_anyway,
            )
        )
        return name
