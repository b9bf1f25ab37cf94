"""bench/instructions.py: the figures it derives from callgrind's output, and one arm counted
for real under valgrind against a real mock (skipped where valgrind is not installed)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import instructions, procs


def test_totals_reads_the_last_totals_line(tmp_path: Path) -> None:
    out = tmp_path / "callgrind.out"
    out.write_text("version: 1\nevents: Ir\nsummary: 0\nfn=(1) main\n3 7\n\ntotals: 125077000\n")
    assert instructions.totals(out) == 125077000
    out.write_text("events: Ir\n")
    with pytest.raises(ValueError, match="no totals"):
        instructions.totals(out)


def test_per_call_puts_the_router_beyond_the_pool_call() -> None:
    counts = {"pool": 125_000_000, "router": 228_000_000, "router-warning": 196_500_000}
    assert instructions.per_call(counts, 1000) == {
        "pool": 125_000,
        "router": 228_000,
        "router-warning": 196_500,
        "router_beyond_pool": 103_000,
        "router-warning_beyond_pool": 71_500,
    }


@pytest.fixture
def mock(tmp_path: Path) -> Iterator[procs.Child]:
    child = procs.start_mock("mock", cpus=None, log_dir=tmp_path)
    yield child
    child.stop()


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_an_arm_is_counted_over_its_measured_calls_only(tmp_path: Path, mock: procs.Child) -> None:
    """Ten times the calls, about ten times the instructions: warm-up and start-up (hundreds of
    millions of instructions of imports) are outside the count."""
    few = instructions.measure_arm("pool", "openai", mock.url, 20, tmp_path)
    many = instructions.measure_arm("pool", "openai", mock.url, 200, tmp_path)
    assert 8 < many / few < 12
    assert 20_000 < few / 20 < 1_000_000
