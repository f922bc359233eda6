"""The comparison's rows (bench/rows.py) and its table (bench/report.py): pure, no processes."""

from __future__ import annotations

from bench import report, rows


def test_the_drop_rows_compare_the_smallest_and_largest_drain() -> None:
    medians = {"W3:5000": 2000.0, "W3:20000": 1900.0, "W3:100000": 1500.0, "W3:5000:analysed": 2000.0}
    medians["W3:100000:analysed"] = 2100.0
    derived = rows.with_drops(medians, (5000, 20000, 100000))
    assert derived["W3drop"] == 25.0
    assert derived["W3drop:analysed"] == -5.0


def test_a_drop_is_unknown_when_either_drain_failed() -> None:
    assert rows.drop(2000.0, "error: no answer within 600 s") is None


def test_a_single_drain_size_has_no_drop_row() -> None:
    assert not any(key.startswith("W3drop") for key in rows.metrics((5000,)))


def test_every_size_gets_a_row_without_and_with_analyze() -> None:
    labels = [row.label for row in rows.metrics((5000, 100000)).values()]
    assert "W3 drain 100,000" in labels
    assert "W3 drain 100,000, ANALYZEd" in labels
    assert "worker RSS peak, drain 100,000" in labels


def test_a_peer_cell_shows_taskwebs_ratio_except_in_percent_rows() -> None:
    metrics = rows.metrics((500, 2000))
    medians = {
        "taskweb": {"W1": 1000.0, "W3drop": 10.0},
        "pgqueuer": {"W1": 500.0, "W3drop": 5.0},
    }
    text = report.table("postgres", medians, 3, {"taskweb": "postgres", "pgqueuer": "postgres"}, metrics)
    w1 = next(line for line in text.splitlines() if line.startswith("W1 "))
    drop = next(line for line in text.splitlines() if line.startswith("W3 drop 500->2,000 (%)"))
    assert w1.endswith("500 (2.00x)")
    assert drop.endswith("5.0")
