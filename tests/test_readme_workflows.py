"""The README's Workflows section, followed word for word: its Python, its curl lines, its taskctl lines."""

from __future__ import annotations

import json
import re
import shlex
import sys
import types
from io import StringIO

import pytest
from django.core.management import call_command

from queues.models import Job, Workflow
from queues.testing import run_jobs
from queues.workflows import workflow

from .api import ApiClient
from .processes import ROOT

pytestmark = pytest.mark.django_db


def section() -> str:
    text = (ROOT / "README.md").read_text()
    return text.split("\n## Workflows\n", 1)[1].split("\n## ", 1)[0]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(), re.S)


@pytest.fixture
def readme_module():
    """The README's tasks module, importable as workers import a task's module."""
    module = types.ModuleType("readme_workflow_tasks")
    sys.modules[module.__name__] = module
    yield module
    del sys.modules[module.__name__]


def test_the_python_example_runs_as_written(readme_module):
    tasks_code, enqueue_code, read_code = blocks("python")
    exec(tasks_code, readme_module.__dict__)
    exec(enqueue_code, readme_module.__dict__)
    run_jobs()
    run = readme_module.run
    lines = [line.split("#")[0].strip() for line in read_code.splitlines()]
    status, progress, job_ids, parsed = (eval(line, readme_module.__dict__) for line in lines)
    assert (status, progress, parsed) == ("succeeded", (6, 0, 6), len("rows of https://example.com/a.csv"))
    assert list(job_ids)[:3] == ["fetch", "parse", "thumbnail"] and len(job_ids) == 6
    callbacks = Job.objects.filter(meta__has_key="callback").order_by("id")
    assert sorted(job.result for job in callbacks) == [
        f"workflow {run.id}: every step finished",
        f"workflow {run.id}: every step succeeded",
    ]


def test_the_curl_lines_answer_as_described():
    sh = next(block for block in blocks("sh") if "$API/workflows" in block)
    body = json.loads(re.search(r"-d '(\{.*?\})'\n", sh, re.S).group(1))
    api = ApiClient()
    created = api.post("/workflows", body)
    assert created.status_code == 201, created.json()
    workflow_id = created.json()["id"]
    assert [s["status"] for s in created.json()["steps"]] == ["queued", "queued", "blocked"]
    for line in sh.splitlines()[len(sh.split("}'\n", 1)[0].splitlines()) + 1 :]:
        command = line.split(" # ")[0]
        path = re.search(r"\$API(/\S*?)\"?(\s|$)", command).group(1).replace("/1", f"/{workflow_id}")
        if "-X POST" in command:
            response = api.post(path)
        else:
            route, _, query = path.partition("?")
            response = api.get(route, **dict(part.split("=") for part in query.split("&") if part))
        assert response.status_code == 200, (command, response.json())
    assert Workflow.objects.get(id=workflow_id).cancelled_at is not None


def test_the_taskctl_lines_run(readme_module):
    exec(blocks("python")[0], readme_module.__dict__)
    run = workflow(readme_module.fetch.s("a").set(name="stats")).enqueue()
    sh = next(block for block in blocks("sh") if "taskctl workflows" in block)
    for line in sh.splitlines():
        words = shlex.split(line.split("#")[0])[2:]  # after "$M taskctl"
        words = [str(run.id) if word == "1" else word for word in words]
        out = StringIO()
        if words[1] == "retry":
            run_jobs()
        call_command("taskctl", *words, stdout=out)
        assert out.getvalue().strip(), line
