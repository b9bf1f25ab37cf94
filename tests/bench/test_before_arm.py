"""The issue #15 "before" arm of the benchmark: the checks against it (synthetic results, no
load), the table's column, and that the arm really imports the old code."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench import before, procs, report, report_md, report_perf, run, targets
from bench.targets import Target


def _results(ours: dict[str, float], theirs: dict[str, float] | None) -> dict[str, Any]:
    """Chat and stream sections as bench/run.py records them; `theirs` None = no before arm."""

    def section(key: str, direct: dict[str, float]) -> dict[str, Any]:
        out: dict[str, Any] = {"direct": direct, "llm-backends": {key: ours[key]}}
        if theirs is not None:
            out[before.NAME] = {key: theirs.get(key)}
        return out

    return {
        "chat": {
            "c1": section("added_p50_ms", {"p50_ms": 0.2}),
            "c32": {
                "direct": {"rps": 50000.0},
                "llm-backends": {"rps": ours["rps"]},
                **({before.NAME: {"rps": theirs["rps"]}} if theirs else {}),
            },
        },
        "stream": {
            "ttfb_c1": section("added_ttfb_p50_ms", {"ttfb_p50_ms": 0.15}),
            "ttfb_c1_instant": section("added_ttfb_p50_ms", {"ttfb_p50_ms": 0.03}),
            "c32": {
                "direct": {"rps": 38000.0},
                "llm-backends": {"rps": ours["stream_rps"]},
                **({before.NAME: {"rps": theirs["stream_rps"]}} if theirs else {}),
            },
        },
    }


OURS = {"added_p50_ms": 0.1, "rps": 10000.0, "added_ttfb_p50_ms": 0.2, "stream_rps": 4000.0}


def _by_target(checks: list[dict[str, Any]], start: str) -> list[dict[str, Any]]:
    return [c for c in checks if c["target"].startswith(start)]


def test_stream_ttfb_is_checked_against_half_the_before_arm_of_the_same_run() -> None:
    theirs = {"added_p50_ms": 0.2, "rps": 5000.0, "added_ttfb_p50_ms": 0.5, "stream_rps": 1000.0}
    checks = report_perf.performance_checks(_results(OURS, theirs), "llm-backends")
    ttfb = _by_target(checks, "stream added TTFB")
    assert [c["pass"] for c in ttfb] == [True, True]
    assert all("before arm's (1e4aec3)" in c["target"] for c in ttfb)
    assert ttfb[0]["bound"] == "<= 0.5 of it (<= 0.250 ms)"

    theirs["added_ttfb_p50_ms"] = 0.3  # 0.2 > 0.3 / 2
    checks = report_perf.performance_checks(_results(OURS, theirs), "llm-backends")
    assert [c["pass"] for c in _by_target(checks, "stream added TTFB")] == [False, False]


def test_without_the_before_arm_the_recorded_figures_are_used_and_the_label_says_so() -> None:
    ours = {**OURS, "added_ttfb_p50_ms": 0.3}
    checks = report_perf.performance_checks(_results(ours, None), "llm-backends")
    ttfb = _by_target(checks, "stream added TTFB")
    assert all("the before arm was not run" in c["target"] for c in ttfb)
    recorded = report_perf.BASELINE_STREAM_ADDED_TTFB_MS
    assert [c["bound"] for c in ttfb] == [
        f"<= {recorded['ttfb_c1'] / 2:.3f} ms",
        f"<= {recorded['ttfb_c1_instant'] / 2:.3f} ms",
    ]
    assert [c["pass"] for c in ttfb] == [True, False]  # 0.3 <= 0.912 / 2; 0.3 > 0.448 / 2
    assert not [c for c in checks if c.get("info")]


def test_a_before_arm_without_a_figure_is_not_measured_not_the_recorded_one() -> None:
    theirs = {"added_p50_ms": 0.2, "rps": 5000.0, "stream_rps": 1000.0}  # no TTFB figure
    checks = report_perf.performance_checks(_results(OURS, theirs), "llm-backends")
    ttfb = _by_target(checks, "stream added TTFB")
    assert [c["pass"] for c in ttfb] == [None, None]
    assert all("gave no figure" in c["target"] for c in ttfb)


def test_throughput_share_stays_a_check_and_the_before_arm_is_shown_beside_it() -> None:
    theirs = {"added_p50_ms": 0.2, "rps": 5000.0, "added_ttfb_p50_ms": 0.5, "stream_rps": 1000.0}
    checks = report_perf.performance_checks(_results(OURS, theirs), "llm-backends")
    share = _by_target(checks, "throughput c=32 as a share of the direct mock's")
    assert share[0] == {
        "target": "throughput c=32 as a share of the direct mock's",
        "value": "1/5.0",
        "bound": ">= 1/5",
        "pass": True,
    }
    assert share[1]["info"] and share[1]["pass"] is None
    assert share[1]["value"] == "1/5.0 vs 1/10.0 (x2.00 of before)"
    stream = _by_target(checks, "stream c=32 req/s vs the before arm's")
    assert stream[0]["value"] == "4000 vs 1000 (x4.00 of before)"
    latency = _by_target(checks, "added latency c=1 (OpenAI) vs the before arm's")
    assert latency[0]["value"] == "0.100 vs 0.200 ms (0.50 of it)"


def test_the_table_has_a_before_column_and_info_lines_without_a_bound() -> None:
    theirs = {"added_p50_ms": 0.2, "rps": 5000.0, "added_ttfb_p50_ms": 0.5, "stream_rps": 1000.0}
    results = _results(OURS, theirs)
    doc = {"results": results, "checks": report.checks(results)}
    text = report_md.table(doc)
    header = text.splitlines()[0].split()
    assert header == ["direct", "llm-backends", before.NAME]
    info = [line for line in text.splitlines() if line.startswith("  [info]")]
    assert len(info) == 3 and not any("want" in line for line in info)


def test_the_arm_is_interleaved_right_after_todays_gateway() -> None:
    def t(name: str) -> Target:
        return Target(name, 1, {}, "m", "m")

    tgts = [t("direct"), t("llm-backends"), t("litellm")]
    names = [x.name for x in before.with_arm(tgts, t(before.NAME))]
    assert names == ["direct", "llm-backends", before.NAME, "litellm"]
    assert before.with_arm(tgts, None) == tgts
    args, _ = run.parse_args(["--no-before", "--only", "chat"])
    assert args.no_before


def _has_commit(commit: str) -> bool:
    found = subprocess.run(
        ["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=procs.ROOT, capture_output=True
    )
    return found.returncode == 0


@pytest.mark.skipif(targets.llm_backends_cli() is None, reason="needs .venv (make install)")
@pytest.mark.skipif(not _has_commit(before.COMMIT), reason="a shallow clone lacks the commit")
def test_the_arm_imports_the_old_code_not_the_editable_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(procs, "BENCH", tmp_path / "bench")
    mocks: Any = SimpleNamespace(main=SimpleNamespace(url="http://127.0.0.1:9"))
    gw, src, found = before.prepare(tmp_path / "run", mocks, None)
    assert src == tmp_path / "bench" / ".work" / f"before-{before.COMMIT}" / "src"
    assert Path(found) == src / "llm_backends" / "__init__.py"
    assert gw.env["PYTHONPATH"] == str(src)
    assert gw.argv == [str(targets.llm_backends_cli()), *gw.argv[1:]]
    # The commit predates the router's own transport (issue #15): a behaviour of the old tree.
    assert not (src / "llm_backends" / "router" / "transport").exists()

    git = before._git

    def no_git(*args: str) -> bytes:
        if args[0] == "archive":
            raise AssertionError("extracted again")
        return git(*args)

    monkeypatch.setattr(before, "_git", no_git)
    assert before.source() == src  # cached by commit
