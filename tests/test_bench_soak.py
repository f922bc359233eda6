"""The soak test's reading of the catalog and its verdict (bench/soak.py, bench/bloat.py): pure."""

from __future__ import annotations

from pathlib import Path

from bench import bloat, soak
from bench.bloat import ProbeCost, TableSample

MB = 1024 * 1024


def table(name: str, total_mb: float, index_mb: float, updated: int = 0, deleted: int = 0) -> TableSample:
    return TableSample(
        name=name,
        heap=int((total_mb - index_mb) * MB),
        indexes=int(index_mb * MB),
        total=int(total_mb * MB),
        live=0,
        dead=0,
        inserted=0,
        updated=updated,
        hot_updated=0,
        deleted=deleted,
        autovacuums=0,
        autoanalyzes=0,
        index_sizes={f"{name}_claim": int(index_mb * MB)},
    )


def minute(at: float, total_mb: float, index_mb: float, buffers: int) -> soak.Minute:
    return soak.Minute(
        minute=at,
        tables=[table("jobs", total_mb, index_mb, updated=10), table("log", 1.0, 0.5)],
        probe=ProbeCost(buffers=buffers, ms=0.1, rows=0, index="jobs_claim"),
        waiting=0,
        started=100,
        latency={"p50_ms": 2.0, "p99_ms": 4.0, "max_ms": 9.0},
    )


def test_the_verdict_flags_a_table_that_grew_past_twice_its_size_at_the_baseline() -> None:
    samples = [minute(1, 5, 1, 10), minute(5, 10, 2, 10), minute(30, 25, 3, 12)]
    lines, data = soak.verdict(samples, baseline_minute=5, rate=500)
    assert data["baseline_minute"] == 5
    assert data["hot_table"] == "jobs"
    assert data["tables"]["jobs"] == 2.5
    assert data["indexes"]["jobs_claim"] == 1.5
    assert "  jobs: total 10.0 -> 25.0 MB: 2.50x OVER 2x" in lines
    assert "  log: 1.0 -> 1.0 MB (1.00x, not judged)" in lines
    assert any(line.startswith("  claim probe: 10 -> 12 buffers: 1.20x ok") for line in lines)


def test_the_verdict_says_when_the_run_ended_before_the_baseline_minute() -> None:
    lines, data = soak.verdict([minute(1, 5, 1, 10), minute(2, 6, 1, 10)], baseline_minute=5, rate=500)
    assert data["baseline_minute"] == 2
    assert "  the run ended before minute 5: no trend to judge" in lines


def test_the_verdict_says_when_the_worker_fell_behind_the_load() -> None:
    samples = [minute(5, 10, 2, 10), minute(30, 10, 2, 10)]
    samples[-1].waiting = 5_000
    lines, data = soak.verdict(samples, baseline_minute=5, rate=500)
    assert data["kept_up"] is False
    assert lines[-1].startswith("  waiting jobs: 0 -> 5,000: the worker fell behind the load")


def test_the_hot_table_is_the_one_whose_rows_die_most() -> None:
    samples = [table("attempts", 50, 5), table("jobs", 10, 2, updated=900), table("stats", 1, 1, deleted=30)]
    assert bloat.hot_table(samples) == "jobs"


def test_a_plan_is_reduced_to_its_buffers_time_rows_and_index() -> None:
    plan = [
        {
            "Plan": {
                "Node Type": "Limit",
                "Actual Rows": 3,
                "Shared Hit Blocks": 7,
                "Shared Read Blocks": 2,
                "Plans": [{"Node Type": "LockRows", "Plans": [{"Index Name": "job_claimable"}]}],
            },
            "Execution Time": 0.25,
        }
    ]
    assert bloat.probe_cost(plan) == ProbeCost(buffers=9, ms=0.25, rows=3, index="job_claimable")


def test_the_stamp_tail_leaves_a_half_written_line_for_the_next_read(tmp_path: Path) -> None:
    path = tmp_path / "stamps.txt"
    path.write_text("1.0 1.5\n2.0 2.")
    tail = soak.StampTail(path)
    assert tail.new() == [(1.0, 1.5)]
    with path.open("a") as out:
        out.write("25\n")
    assert tail.new() == [(2.0, 2.25)]
