"""The table printed after a run, and the JSON written next to it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.rows import Row

STORE_TITLES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}
MIN_CELL_WIDTH = 16


def figure(value: float | str | None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return "failed"
    return f"{value:,.1f}" if abs(value) < 100 else f"{value:,.0f}"


def cell(value: float | str | None, reference: float | str | None) -> str:
    """A figure and, for a peer, Taskweb's figure divided by it."""
    text = figure(value)
    if isinstance(value, (int, float)) and isinstance(reference, (int, float)) and value > 0:
        text += f" ({reference / value:.2f}x)"
    return text


def table(
    store: str, medians: dict[str, dict[str, Any]], runs: int, peers: dict[str, str], metrics: dict[str, Row]
) -> str:
    """``medians[peer][metric]``; ``peers`` maps each column to its store label.

    Peer cells carry Taskweb's figure divided by the peer's, except in % rows, where a
    ratio of two changes would mean nothing.
    """
    labels = {key: f"{row.label} ({row.unit})" for key, row in metrics.items()}
    label_width = max(len(label) for label in labels.values()) + 2
    titles = {name: f"{name} [{peers[name]}]" for name in medians}
    widths = {name: max(MIN_CELL_WIDTH, len(title)) + 2 for name, title in titles.items()}
    header = f"{STORE_TITLES[store]}, median of {runs} run(s)".ljust(label_width)
    header += "".join(title.rjust(widths[name]) for name, title in titles.items())
    lines = [header, "-" * len(header)]
    reference = medians.get("taskweb", {})
    for key, row in metrics.items():
        line = labels[key].ljust(label_width)
        for name, width in widths.items():
            ref = None if name == "taskweb" or row.unit == "%" else reference.get(key)
            line += cell(medians[name].get(key), ref).rjust(width)
        lines.append(line)
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
