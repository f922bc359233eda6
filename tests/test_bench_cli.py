"""The benchmark's command lines: the README's, word for word, and the options they rest on."""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from bench import compare, memory, soak
from bench.peers import taskweb

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_commands(script: str) -> list[list[str]]:
    """The arguments of every README line that runs ``script``."""
    env = r'(?:\w+=(?:"[^"]*"|\S+) )*'
    lines = re.findall(rf"^{env}\.venv/bin/python {re.escape(script)} ?(.*)$", README.read_text(), re.M)
    return [shlex.split(line.split("#")[0]) for line in lines]


def test_every_compare_command_in_the_readme_parses() -> None:
    commands = readme_commands("-m bench.compare")
    assert commands
    for argv in commands:
        compare.parse(argv)


def test_every_soak_command_in_the_readme_parses() -> None:
    commands = readme_commands("bench/soak.py")
    assert commands
    for argv in commands:
        soak.parse(argv)


def test_drain_sizes_are_read_smallest_first() -> None:
    assert compare.parse(["--drain-sizes", "100000,5000"]).drain_sizes == (5000, 100000)


def test_drain_sizes_refuse_anything_but_job_counts() -> None:
    with pytest.raises(SystemExit):
        compare.parse(["--drain-sizes", "5k"])
    with pytest.raises(SystemExit):
        compare.parse(["--drain-sizes", "0,100"])


def test_taskwebs_slots_follow_the_runworker_options_given() -> None:
    assert taskweb.slots(["--concurrency", "4", "--prefetch", "0"]) == 4
    assert taskweb.slots(["--autoscale", "1,6"]) == 6


def test_a_process_session_is_read_past_a_name_with_spaces_and_parentheses() -> None:
    stat = "4242 (python (a) b) S 1 4200 4100 0 -1 4194560"
    assert memory.session_of(stat) == 4100


@pytest.mark.parametrize(
    ("make_args", "script", "parse"),
    [
        (["bench", "BENCH_ARGS=--quick"], "-m bench.compare", compare.parse),
        (["soak"], "bench/soak.py", soak.parse),
    ],
)
def test_the_readmes_make_targets_run_the_bench_scripts(
    make_args: list[str], script: str, parse: Callable[[list[str]], object]
) -> None:
    dry_run = subprocess.run(
        ["make", "-n", *make_args], cwd=README.parent, capture_output=True, text=True, check=True
    ).stdout
    line = next(line for line in dry_run.splitlines() if f"/python {script}" in line)
    parse(shlex.split(line.split(script, 1)[1]))
