"""The table printed after a run, and the JSON written next to it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.runner import METRICS

STORE_TITLES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
LABEL_WIDTH = 32
MIN_CELL_WIDTH = 16


def figure(value: float | str | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return "failed"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def cell(value: float | str | None, reference: float | str | None) -> str:
    """A figure and, for a peer, Taskweb's figure divided by it."""
    text = figure(value)
    if isinstance(value, (int, float)) and isinstance(reference, (int, float)) and value > 0:
        text += f" ({reference / value:.2f}x)"
    return text


def table(store: str, medians: dict[str, dict[str, Any]], runs: int, peers: dict[str, str]) -> str:
    """``medians[peer][metric]``; ``peers`` maps each column to its store label."""
    titles = {name: f"{name} [{peers[name]}]" for name in medians}
    widths = {name: max(MIN_CELL_WIDTH, len(title)) + 2 for name, title in titles.items()}
    header = f"{STORE_TITLES[store]}, median of {runs} run(s)".ljust(LABEL_WIDTH)
    header += "".join(title.rjust(widths[name]) for name, title in titles.items())
    lines = [header, "-" * len(header)]
    reference = medians.get("taskweb", {})
    for metric, label in METRICS.items():
        row = label.ljust(LABEL_WIDTH)
        for name, width in widths.items():
            ref = None if name == "taskweb" else reference.get(metric)
            row += cell(medians[name].get(metric), ref).rjust(width)
        lines.append(row)
    return "\n".join(lines)


def failures(results: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    found = []
    for store, by_peer in results.items():
        for peer, metrics in by_peer.items():
            for metric, entry in metrics.items():
                for value in entry["runs"]:
                    if isinstance(value, str):
                        found.append(f"{store} {peer} {metric}: {value}")
    return found


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
