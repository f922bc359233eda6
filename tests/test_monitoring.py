"""deploy/grafana and deploy/prometheus: every panel and alert reads what /metrics exports.

Each PromQL expression of the dashboard (panel targets and the queue/task variables) and
of the alert rules is parsed; every metric it selects must be in a real scrape of
``GET /metrics``, over a database holding jobs of two queues and three tasks in every
status, live workers and an open circuit, with each label the expression filters,
groups, joins or shows by. promtool (Debian's prometheus package: ``make deploy-tools``)
checks the rules and runs their unit tests, as docs/deploy.md tells operators to.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import promql_parser as promql
import pytest
import yaml
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from queues import lifecycle, values
from queues.models import Worker
from queues.states import Outcome

from .factories import make_job, make_queue, start_claimed
from .processes import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "taskweb.json"
PROMETHEUS = ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
ALERT_TESTS = PROMETHEUS / "alerts.test.yml"
# Grafana's own interval variables, as Grafana fills them in before a query is sent.
GRAFANA_INTERVALS = {"__rate_interval": "5m", "__interval": "1m", "__range": "6h"}
# {{queue}} in a legend, {{ $labels.queue }} in an annotation ({{ $value }} is no label).
SHOWN_LABEL = re.compile(r"\{\{\s*(?:\$labels\.)?(\w+)\s*(?:\|[^}]*)?\}\}")
PROMTOOL = pytest.mark.skipif(not shutil.which("promtool"), reason="no promtool (make deploy-tools)")


# --- what the expressions select -----------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """One vector selector, and every label the expression around it relies on."""

    where: str
    selector: str
    metric: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, operator, value)
    labels: frozenset[str]


# Keyed by the operator's name: the parser's MatchOp is not hashable.
MATCH = {
    str(promql.MatchOp.Equal): lambda value, wanted: value == wanted,
    str(promql.MatchOp.NotEqual): lambda value, wanted: value != wanted,
    str(promql.MatchOp.Re): lambda value, wanted: re.fullmatch(wanted, value) is not None,
    str(promql.MatchOp.NotRe): lambda value, wanted: re.fullmatch(wanted, value) is None,
}


def selections(expr: str, where: str, shown: frozenset[str] = frozenset()) -> Iterator[Selection]:
    """The selectors of ``expr``, with the labels each must carry for ``expr`` to mean
    what it says: those it is matched on, aggregated by, joined on, and ``shown``."""
    for selector, labels in _walk(promql.parse(expr), shown):
        matchers = tuple((m.name, str(m.op), m.value) for m in selector.matchers.matchers)
        names = {name for name, _, _ in matchers}
        yield Selection(where, str(selector), selector.name, matchers, labels | names)


def _walk(node: Any, needed: frozenset[str]) -> Iterator[tuple[Any, frozenset[str]]]:
    if isinstance(node, promql.VectorSelector):
        yield node, needed
    elif isinstance(node, promql.MatrixSelector):
        yield from _walk(node.vector_selector, needed)
    elif isinstance(node, promql.AggregateExpr):
        grouping = frozenset(node.modifier.labels) if node.modifier else frozenset()
        by = node.modifier is not None and node.modifier.type == promql.AggModifierType.By
        dropped = needed - grouping if by else needed & grouping
        assert not dropped, f"{node} drops {sorted(dropped)}, which the expression around it uses"
        yield from _walk(node.expr, grouping if by else needed)
    elif isinstance(node, promql.Call):
        # histogram_quantile reads the bucket bounds from the le label.
        extra = frozenset({"le"}) if node.func.name == "histogram_quantile" else frozenset()
        for arg in node.args:
            yield from _walk(arg, needed | extra)
    elif isinstance(node, promql.BinaryExpr):
        joined = needed
        matching = node.modifier.matching if node.modifier else None
        if matching is not None and matching.type == promql.LabelModifierType.Include:
            joined = joined | frozenset(matching.labels)
        yield from _walk(node.lhs, joined)
        yield from _walk(node.rhs, joined)
    elif isinstance(node, (promql.ParenExpr, promql.UnaryExpr, promql.SubqueryExpr)):
        yield from _walk(node.expr, needed)
    else:
        assert isinstance(node, (promql.NumberLiteral, promql.StringLiteral)), f"unexpected {type(node)}"


def shown_labels(text: str) -> frozenset[str]:
    """Labels a legend (``{{queue}}``) or an alert annotation (``{{ $labels.queue }}``) shows."""
    return frozenset(SHOWN_LABEL.findall(text))


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict[str, Any]]:
    return [panel for panel in dashboard()["panels"] if panel["type"] != "row"]


def as_grafana_sends(expr: str) -> str:
    """The query with the dashboard's variables filled in: a queue or task variable by its
    "All" value, Grafana's interval variables by an interval."""
    values = dict(GRAFANA_INTERVALS)
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            values[variable["name"]] = variable["allValue"]
    filled = re.sub(r"\$\{?(\w+)\}?", lambda match: values[match.group(1)], expr)
    assert "$" not in filled, f"unknown variable in {expr!r}"
    return filled


def dashboard_selections() -> Iterator[Selection]:
    for panel in panels():
        for target in panel["targets"]:
            where = f"panel {panel['title']!r} {target['refId']}"
            yield from selections(
                as_grafana_sends(target["expr"]), where, shown_labels(target["legendFormat"])
            )
    for variable in dashboard()["templating"]["list"]:
        if variable["type"] == "query":
            # label_values(<selector>, <label>): Grafana lists the label's values among the series.
            found = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
            assert found, variable["query"]
            where = f"variable {variable['name']!r}"
            yield from selections(as_grafana_sends(found.group(1)), where, frozenset({found.group(2)}))


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]


def alert_selections() -> Iterator[Selection]:
    for rule in alert_rules():
        shown = frozenset().union(*(shown_labels(text) for text in rule.get("annotations", {}).values()))
        yield from selections(rule["expr"], f"alert {rule['alert']}", shown)


# --- a cluster with something in every status -----------------------------------------


def run_one(queue: str, task: str, outcome: Outcome | None, **spec: Any) -> None:
    """Enqueue one job and, through the broker as a worker does, claim it and record
    ``outcome`` (None: leave it running). The queue holds no other due job."""
    make_job(task, queue=queue, **spec)
    (claimed,) = start_claimed("w-any", [queue], 1)
    if outcome is not None:
        started = timezone.now() - timedelta(seconds=0.2)
        finished = values.Finished(
            claimed, outcome, started, timezone.now(), error_type="E", retryable=claimed.has_attempts_left
        )
        lifecycle.finish("w-any", [finished])


@pytest.fixture
def busy_cluster(settings) -> None:
    """Two queues, each with a succeeded, a retried (scheduled), a dead, a running, a
    cancelled, a queued and a delayed job; two live workers; an open circuit."""
    lifecycle.register_worker(Worker(id="w-any", hostname="h1", pid=1, concurrency=4))
    lifecycle.register_worker(Worker(id="w-mail", hostname="h2", pid=2, concurrency=2, queues=["mail"]))
    for queue in ("mail", "reports"):
        make_queue(queue)
        run_one(queue, "tests.tasks.add", Outcome.SUCCEEDED, args=[1, 2])
        run_one(queue, "tests.tasks.fail", Outcome.FAILED, max_attempts=3)
        run_one(queue, "tests.tasks.fail", Outcome.FAILED, max_attempts=1)
        run_one(queue, "tests.tasks.noop", None)
        lifecycle.cancel(make_job(queue=queue).id)
        make_job(queue=queue)
        make_job(queue=queue, run_after=timezone.now() + timedelta(hours=1))
    settings.QUEUES_CIRCUIT_FAILURE_RATIO, settings.QUEUES_CIRCUIT_MIN_CALLS = 0.5, 2
    settings.QUEUES_CIRCUIT_COOLDOWN = 600
    make_queue("payments")
    for _ in range(2):
        run_one("payments", "tests.tasks.fail_permanently", Outcome.FAILED, max_attempts=1)


def scraped(client) -> dict[str, list[dict[str, str]]]:
    """{sample name: [labels of each sample]} from GET /metrics."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    samples: dict[str, list[dict[str, str]]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample.labels)
    return samples


def unmet(wanted: list[Selection], samples: dict[str, list[dict[str, str]]]) -> list[str]:
    """Each selection no exported series satisfies, said in words."""
    problems = []
    for selection in wanted:
        series = samples.get(selection.metric)
        if not series:
            problems.append(f"{selection.where}: /metrics has no {selection.metric}")
            continue
        if not any(_satisfies(labels, selection) for labels in series):
            have = sorted({name for labels in series for name in labels})
            problems.append(
                f"{selection.where}: no series matches {selection.selector} with labels "
                f"{sorted(selection.labels)} (its series have {have})"
            )
    return problems


def _satisfies(labels: dict[str, str], selection: Selection) -> bool:
    return selection.labels <= labels.keys() and all(
        MATCH[op](labels.get(name, ""), value) for name, op, value in selection.matchers
    )


# --- the dashboard ----------------------------------------------------------------------


@pytest.mark.django_db
def test_every_metric_a_dashboard_panel_or_variable_reads_is_exported_with_its_labels(client, busy_cluster):
    wanted = list(dashboard_selections())
    assert len({selection.metric for selection in wanted}) >= 12
    assert unmet(wanted, scraped(client)) == []


@pytest.mark.django_db
def test_a_selector_that_no_exported_series_satisfies_is_reported(client, busy_cluster):
    # The check itself: a wrong name, a missing label and an unmatched value are each caught.
    wanted = [
        *selections("rate(taskweb_jobs_finished_total[5m])", "wrong name"),
        *selections("sum by (worker) (taskweb_queue_depth)", "missing label"),
        *selections('taskweb_circuit_open{state="stuck"}', "unmatched value"),
        *selections(
            "histogram_quantile(0.9, sum by (le) (rate(taskweb_job_runtime_seconds_bucket[5m])))", "ok"
        ),
    ]
    assert [problem.split(":")[0] for problem in unmet(wanted, scraped(client))] == [
        "wrong name",
        "missing label",
        "unmatched value",
    ]


def test_an_aggregation_that_drops_a_label_the_legend_shows_is_reported():
    with pytest.raises(AssertionError, match=r"drops \['task'\]"):
        list(
            selections("sum by (queue) (rate(taskweb_jobs_failed_total[5m]))", "legend", frozenset({"task"}))
        )


def test_no_panel_or_alert_names_a_job_status():
    # Statuses come and go (a job claimed but not yet started is "reserved"): panels group
    # by the status label instead of naming values, so a new status shows up by itself.
    everything = [*dashboard_selections(), *alert_selections()]
    named = [s.where for s in everything if any(name == "status" for name, _, _ in s.matchers)]
    assert named == []
    by_status = [s for s in dashboard_selections() if s.metric == "taskweb_queue_jobs"]
    assert by_status and all("status" in s.labels for s in by_status)


def test_every_panel_reads_the_data_source_chosen_on_import():
    (variable,) = [v for v in dashboard()["templating"]["list"] if v["type"] == "datasource"]
    chosen = {"type": "prometheus", "uid": f"${{{variable['name']}}}"}
    for panel in panels():
        assert panel["datasource"] == chosen, panel["title"]
        assert all(target["datasource"] == chosen for target in panel["targets"]), panel["title"]


def test_every_panel_has_its_own_id_and_its_own_place_on_the_grid():
    everything = dashboard()["panels"]
    assert len({panel["id"] for panel in everything}) == len(everything)
    taken: set[tuple[int, int]] = set()
    for panel in everything:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


# --- the alerts -------------------------------------------------------------------------


@pytest.mark.django_db
def test_every_metric_an_alert_reads_is_exported_with_its_labels(client, busy_cluster):
    wanted = list(alert_selections())
    assert {rule["alert"] for rule in alert_rules()} >= {
        "TaskwebQueueBackingUp",
        "TaskwebOldestJobTooOld",
        "TaskwebDeadLetters",
        "TaskwebNoWorkersAlive",
        "TaskwebCircuitOpen",
    }
    assert unmet(wanted, scraped(client)) == []


@PROMTOOL
def test_promtool_accepts_the_alert_rules():
    done = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@PROMTOOL
def test_each_alert_fires_on_its_synthetic_series_and_stays_quiet_otherwise():
    # As docs/deploy.md says, from deploy/prometheus.
    done = subprocess.run(
        ["promtool", "test", "rules", ALERT_TESTS.name], cwd=PROMETHEUS, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alert_unit_tests_see_every_alert_both_fire_and_stay_quiet():
    checks = [
        check
        for test in yaml.safe_load(ALERT_TESTS.read_text())["tests"]
        for check in test["alert_rule_test"]
    ]
    alerts = {rule["alert"] for rule in alert_rules()}
    assert {check["alertname"] for check in checks if check["exp_alerts"]} == alerts
    assert {check["alertname"] for check in checks if not check["exp_alerts"]} == alerts


@PROMTOOL
def test_prometheus_loads_the_example_config_with_the_alerts_copied_beside_it(tmp_path):
    # As docs/deploy.md says: the example config and the rules, side by side in /etc/prometheus.
    shutil.copy(PROMETHEUS / "prometheus.yml", tmp_path / "prometheus.yml")
    shutil.copy(ALERTS, tmp_path / "taskweb-alerts.yml")
    done = subprocess.run(
        ["promtool", "check", "config", str(tmp_path / "prometheus.yml")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 1 rule files found" in done.stdout
