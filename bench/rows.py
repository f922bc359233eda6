"""The rows of the comparison: what each run measures, labelled, and what is derived from medians.

Rows depend on the W3 sizes chosen (``--drain-sizes``), so they are built, not listed.
A key names one figure in ``results.json``; a label is what the table prints.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class Row(NamedTuple):
    label: str
    unit: str  # "jobs/s" (higher is better), "ms" or "MB" (lower is better), "%" (no ratio shown)


def count(n: int) -> str:
    return f"{n:,}"


def drain_key(n: int, analysed: bool) -> str:
    return f"W3:{n}{':analysed' if analysed else ''}"


def drop_key(analysed: bool) -> str:
    return f"W3drop{':analysed' if analysed else ''}"


def metrics(drains: tuple[int, ...]) -> dict[str, Row]:
    """Every row, in table order, for W3 at ``drains`` sizes (the largest also gives memory)."""
    rows = {
        "W1": Row("W1 enqueue one by one", "jobs/s"),
        "W2": Row("W2 bulk enqueue", "jobs/s"),
    }
    for n in drains:
        rows[drain_key(n, False)] = Row(f"W3 drain {count(n)}", "jobs/s")
        rows[drain_key(n, True)] = Row(f"W3 drain {count(n)}, ANALYZEd", "jobs/s")
    if len(drains) > 1:
        span = f"{count(min(drains))}->{count(max(drains))}"
        rows[drop_key(False)] = Row(f"W3 drop {span}", "%")
        rows[drop_key(True)] = Row(f"W3 drop {span}, ANALYZEd", "%")
    rows |= {
        "W4p50": Row("W4 enqueue->start p50", "ms"),
        "W4p99": Row("W4 enqueue->start p99", "ms"),
        "W6p50": Row("W6 quick job p50, slots busy", "ms"),
        "W6p99": Row("W6 quick job p99, slots busy", "ms"),
        "W6max": Row("W6 quick job max, slots busy", "ms"),
        "RSS": Row(f"worker RSS peak, drain {count(max(drains))}", "MB"),
        "PSS": Row(f"worker PSS peak, drain {count(max(drains))}", "MB"),
    }
    return rows


def measured(drains: tuple[int, ...]) -> list[str]:
    """The keys a run produces itself (the drops are derived afterwards)."""
    return [key for key in metrics(drains) if not key.startswith("W3drop")]


def drop(small: Any, large: Any) -> float | None:
    """How much slower (in %) the large drain ran than the small one; negative if faster."""
    if isinstance(small, (int, float)) and isinstance(large, (int, float)) and small > 0:
        return (small - large) / small * 100
    return None


def with_drops(medians: dict[str, Any], drains: tuple[int, ...]) -> dict[str, Any]:
    """``medians`` plus the drop rows, computed from the median rates of the two end sizes."""
    if len(drains) < 2:
        return medians
    small, large = min(drains), max(drains)
    return medians | {
        drop_key(analysed): drop(
            medians.get(drain_key(small, analysed)), medians.get(drain_key(large, analysed))
        )
        for analysed in (False, True)
    }
