"""Issue #15's targets (performance): against Portkey, LiteLLM, the direct mock, and the code
before the issue (bench/before.py) measured in the same run.

This VM's speed varies about 2x between days, so "before" is the before arm of this very run;
the figures recorded before the issue are used only when that arm was not run, and the check
then says so. Kept apart from bench/report.py so that file stays readable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.before import COMMIT as BEFORE_COMMIT
from bench.before import NAME as BEFORE
from bench.nested import get as _get
from bench.relay import NAME as RELAY

#: Stream added TTFB at c=1 (paced and instant mock) in the last run before the issue
#: (bench/results of BASELINE_DATE); only when the before arm was not run.
BASELINE_STREAM_ADDED_TTFB_MS = {"ttfb_c1": 0.912, "ttfb_c1_instant": 0.448}
BASELINE_DATE = "2026-11-26"

Add = Callable[..., None]


def performance_checks(results: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """Each target: value, bound, pass (None: not measured). Rows with `info` are figures
    shown beside the targets, not targets."""
    out: list[dict[str, Any]] = []

    def add(label: str, value: Any, bound: str, ok: bool | None, info: bool = False) -> None:
        row = {"target": label, "value": value, "bound": bound, "pass": ok}
        out.append({**row, "info": True} if info else row)

    _vs_peers(add, results, name)
    _chat_vs_before(add, results, name)
    _stream_ttfb(add, results, name)
    _stream_c32_vs_before(add, results, name)
    for backend in ("openai", "ollama"):
        # Both baselines must hold: a raw aiohttp call (what a user would write) and a raw
        # call on the router's own pool (so a faster client cannot hide the router's work).
        vs_aiohttp = _get(results, "library", f"{backend}/logs-default", "overhead_cpu_us")
        vs_pool = _get(results, "library", f"{backend}/logs-default", "overhead_vs_lean_cpu_us")
        worst = None if vs_aiohttp is None or vs_pool is None else max(vs_aiohttp, vs_pool)
        add(
            f"library overhead per call ({backend} backend, default logs), beyond a raw "
            "aiohttp call / a raw call on the router's own pool",
            None if worst is None else f"{vs_aiohttp} / {vs_pool} µs",
            "<= 25 µs",
            None if worst is None else worst <= 25,
        )
    return out


def _vs_peers(add: Add, results: dict[str, Any], name: str) -> None:
    portkey_added = _get(results, "chat", "c1", "portkey", "added_p50_ms")
    lite_added = _get(results, "chat", "c1", "litellm", "added_p50_ms")
    for section, label in (("chat", "OpenAI"), ("ollama", "Ollama")):
        added = _get(results, section, "c1", name, "added_p50_ms")
        ok = None if added is None or not portkey_added else added <= 0.5 * portkey_added
        add(
            f"added latency c=1, {label} protocol, vs Portkey's (OpenAI)",
            None if ok is None else f"{added:.3f} of {portkey_added:.3f} ms",
            "<= 0.5 of it",
            ok,
        )
        ok = None if added is None or not lite_added else added <= lite_added / 20
        add(
            f"added latency c=1, {label} protocol, vs LiteLLM's",
            None if ok is None else f"{added:.3f} of {lite_added:.3f} ms",
            "<= 1/20 of it",
            ok,
        )


def _chat_vs_before(add: Add, results: dict[str, Any], name: str) -> None:
    """The c=32 share of the direct mock (a target), and beside it the before arm's share and
    its c=1 added latency (figures)."""
    ours = _get(results, "chat", "c32", name, "rps")
    direct = _get(results, "chat", "c32", "direct", "rps")
    share = ours / direct if ours and direct else None
    add(
        "throughput c=32 as a share of the direct mock's",
        None if share is None else f"1/{1 / share:.1f}",
        ">= 1/5",
        None if share is None else share >= 0.2,
    )
    theirs = _get(results, "chat", "c32", BEFORE, "rps")
    if share is not None and theirs:
        add(
            f"throughput c=32 as a share of the direct mock's, vs the before arm's "
            f"({BEFORE_COMMIT})",
            f"1/{1 / share:.1f} vs 1/{direct / theirs:.1f} (x{ours / theirs:.2f} of before)",
            "",
            None,
            info=True,
        )
    added = _get(results, "chat", "c1", name, "added_p50_ms")
    ref = _get(results, "chat", "c1", BEFORE, "added_p50_ms")
    if added is not None and ref is not None:
        ratio = f" ({added / ref:.2f} of it)" if added > 0 and ref > 0 else ""
        add(
            f"added latency c=1 (OpenAI) vs the before arm's ({BEFORE_COMMIT})",
            f"{added:.3f} vs {ref:.3f} ms{ratio}",
            "",
            None,
            info=True,
        )
    _beyond_floor(add, results, name, ("chat", "c1"), "added_p50_ms", "added latency c=1 (OpenAI)")


def _stream_ttfb(add: Add, results: dict[str, Any], name: str) -> None:
    """Added TTFB at most half the before arm's in the same run; the recorded figures only
    when the arm was not in the run (no column for it)."""
    for key, label in (("ttfb_c1", "paced"), ("ttfb_c1_instant", "instant")):
        added = _get(results, "stream", key, name, "added_ttfb_p50_ms")
        value = None if added is None else f"{added:.3f} ms"
        if _get(results, "stream", key, BEFORE) is not None:
            ref = _get(results, "stream", key, BEFORE, "added_ttfb_p50_ms")
            target = f"stream added TTFB c=1 ({label} mock) vs the before arm's ({BEFORE_COMMIT})"
            if ref is None:
                add(target + ": the before arm gave no figure", value, "<= 0.5 of it", None)
                continue
            if added is not None and ref > 0:
                value = f"{added:.3f} of {ref:.3f} ms ({added / ref:.2f})"
            add(target, value, f"<= 0.5 of it (<= {ref / 2:.3f} ms)", _half(added, ref))
            _beyond_floor(
                add,
                results,
                name,
                ("stream", key),
                "added_ttfb_p50_ms",
                f"stream added TTFB c=1 ({label} mock)",
            )
        else:
            ref = BASELINE_STREAM_ADDED_TTFB_MS[key]
            add(
                f"stream added TTFB c=1 ({label} mock) vs before, recorded ({ref} ms on "
                f"{BASELINE_DATE}; the before arm was not run)",
                value,
                f"<= {ref / 2:.3f} ms",
                _half(added, ref),
            )


def _beyond_floor(
    add: Add, results: dict[str, Any], name: str, where: tuple[str, str], key: str, what: str
) -> None:
    """A figure: ours and the before arm's added latency minus the relay's (bench/relay.py),
    the part that is the gateway's code rather than one more process in the path."""
    floor = _get(results, *where, RELAY, key)
    ours = _get(results, *where, name, key)
    ref = _get(results, *where, BEFORE, key)
    if floor is None or ours is None or ref is None:
        return
    mine, theirs = ours - floor, ref - floor
    ratio = f" (ratio {mine / theirs:.2f})" if mine > 0 and theirs > 0 else ""
    add(
        f"{what} beyond the relay floor ({floor:.3f} ms)",
        f"ours {mine:.3f} ms vs before {theirs:.3f} ms{ratio}",
        "",
        None,
        info=True,
    )


def _half(added: float | None, ref: float) -> bool | None:
    return None if added is None else added <= ref / 2


def _stream_c32_vs_before(add: Add, results: dict[str, Any], name: str) -> None:
    ours = _get(results, "stream", "c32", name, "rps")
    theirs = _get(results, "stream", "c32", BEFORE, "rps")
    if ours and theirs:
        add(
            f"stream c=32 req/s vs the before arm's ({BEFORE_COMMIT})",
            f"{ours:.0f} vs {theirs:.0f} (x{ours / theirs:.2f} of before)",
            "",
            None,
            info=True,
        )
