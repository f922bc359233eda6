"""The drivers' timing rules (bench/drive.py, bench/stamps.py, bench/steady.py): pure, no processes."""

from __future__ import annotations

from pathlib import Path

from bench import drive, stamps, steady


def test_a_drain_is_polled_every_20_ms_near_its_end() -> None:
    assert drive.next_poll(done=99_900, n=100_000, elapsed=50.0) == drive.POLL


def test_a_drain_is_polled_rarely_while_most_of_it_is_ahead() -> None:
    assert drive.next_poll(done=10_000, n=100_000, elapsed=5.0) == drive.MAX_POLL


def test_polling_backs_off_while_the_worker_is_still_starting() -> None:
    assert drive.next_poll(done=0, n=100_000, elapsed=0.1) == drive.POLL
    assert drive.next_poll(done=0, n=100_000, elapsed=3.0) == 0.3


def test_percentiles_are_samples_of_the_data() -> None:
    values = sorted([5.0, 1.0, 3.0, 2.0, 4.0])
    assert stamps.summary(values) == {"p50_ms": 3.0, "p99_ms": 5.0, "max_ms": 5.0}


def test_latencies_are_read_from_the_start_stamps(tmp_path: Path) -> None:
    path = tmp_path / "stamps.txt"
    stamps.record(str(path), 100.0)
    stamps.record(str(path), 100.0)
    (enqueued, started), _ = stamps.pairs(path)
    assert enqueued == 100.0
    assert stamps.latencies_ms(path)[0] == (started - 100.0) * 1000


def test_the_steady_producer_owes_the_jobs_of_a_slow_tick_to_the_next() -> None:
    assert steady.due(rate=500, elapsed=0.1) == 50
    assert steady.due(rate=500, elapsed=0.35) - steady.due(rate=500, elapsed=0.1) == 125
