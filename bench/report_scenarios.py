"""The later scenarios' part of the report (tools, embeddings, workers, fleet, propagation):
their checks, their lines under the printed table and their sections of RESULTS.md.

Kept apart from bench/report.py so that file stays readable; report.py calls `checks`,
bench/report_md.py the other public functions here. Every function takes the run's `results` as
bench/run.py records them and tolerates a scenario that was not run (or failed): it then says
nothing about it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.nested import get as _get
from bench.report_profile import md_profile

#: The single-server text path before the fleet, fidelity and cluster work: llm-backends'
#: chat figures in the full run stored by commit 9c37999 (`git show
#: 9c37999:bench/results/latest.json`, 3 rounds of 5 s, 2026-11-26).
BASELINE_COMMIT = "9c37999"
BASELINE_CHAT = {"c1_added_p50_ms": 0.446, "c32_rps": 5050.4}
#: Run-to-run noise allowed before "slower than before" fails (same machine, other days).
NOISE = 0.10
#: Issue #12: a change through one process is served by the others within 1 s.
PROPAGATION_BOUND_MS = 1000.0
LLMB = ("llm-backends", "llm-backends (stub)")


def _ms(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f} ms"


# -- checks -------------------------------------------------------------------------------


def checks(results: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The targets issues #10-#12 state for these scenarios; pass None = not measured."""
    out: list[dict[str, Any]] = []

    def add(label: str, value: Any, bound: str, ok: bool | None) -> None:
        out.append({"target": label, "value": value, "bound": bound, "pass": ok})

    added = _get(results, "chat", "c1", name, "added_p50_ms")
    before = BASELINE_CHAT["c1_added_p50_ms"]
    limit = before * (1 + NOISE)
    add(
        f"text path: chat c=1 added p50 vs before ({before} ms, {BASELINE_COMMIT})",
        None if added is None else f"{added:.3f} ms",
        f"<= {limit:.3f} ms (+{NOISE:.0%} noise)",
        None if added is None else added <= limit,
    )
    rps = _get(results, "chat", "c32", name, "rps")
    before = BASELINE_CHAT["c32_rps"]
    floor = before * (1 - NOISE)
    add(
        f"text path: chat c=32 req/s vs before ({before:.0f}, {BASELINE_COMMIT})",
        None if rps is None else f"{rps:.0f}",
        f">= {floor:.0f} (-{NOISE:.0%} noise)",
        None if rps is None else rps >= floor,
    )
    failover = _get(results, "fleet", "failover")
    failed = _get(failover, "failed_requests")
    add(
        "fleet failover: failed client requests (1 of 3 servers killed, 32 clients)",
        None if failed is None else f"{failed} of {failover.get('requests', 0) + failed}",
        "0",
        None if failed is None else failed == 0,
    )
    for key, label in (("process_b_ms", "process B"), ("library_router_ms", "library router")):
        p99 = _get(results, "propagation", key, "p99")
        add(
            f"propagation A -> {label} (p99)",
            None if p99 is None else f"{p99:.0f} ms",
            f"< {PROPAGATION_BOUND_MS:.0f} ms",
            None if p99 is None else p99 < PROPAGATION_BOUND_MS,
        )
    return out


# -- the main table: tool calls beside plain chat ----------------------------------------


def tools_rows(row: Callable[[str, Any], None], results: dict[str, Any]) -> None:
    """The tool-call load, compactly: same columns as `chat`, and its cost over plain chat."""
    tools, chat = results.get("tools"), results.get("chat")
    if not tools:
        return
    c1, c32 = tools.get("c1") or {}, tools.get("c32") or {}

    def cell(sec: dict[str, Any], col: str, key: str, digits: int) -> str:
        return _n(_get(sec, col, key), digits)

    row("tools c=1 p50 / p99 ms", lambda c: _pair(_get(c1, c)))
    row(
        "tools c=1 added p50 ms",
        lambda c: "(ref)" if c == "direct" else cell(c1, c, "added_p50_ms", 3),
    )
    if chat:
        row("tools c=1 p50 minus chat c=1 p50 ms", lambda c: _minus_chat(tools, chat, c))
    row("tools c=32 req/s", lambda c: cell(c32, c, "rps", 0))
    row(
        "tools errors",
        lambda c: (
            "-"
            if _get(c1, c) is None and _get(c32, c) is None
            else str((_get(c1, c, "errors") or 0) + (_get(c32, c, "errors") or 0))
        ),
    )


def _pair(v: dict[str, Any] | None) -> str:
    if not v:
        return "-"
    return f"{_n(v.get('p50_ms'), 3)} / {_n(v.get('p99_ms'), 3)}"


def _minus_chat(tools: dict[str, Any], chat: dict[str, Any], col: str) -> str:
    a, b = _get(tools, "c1", col, "p50_ms"), _get(chat, "c1", col, "p50_ms")
    return "-" if a is None or b is None else f"{a - b:+.3f}"


# -- lines under the printed table --------------------------------------------------------


def extra_lines(results: dict[str, Any]) -> list[str]:
    out: list[str] = []
    emb = results.get("embeddings")
    if emb:
        out += ["", "embeddings (8 texts x 384 dims, 1 client, sequential; ms):"]
        for key in ("direct_openai", "direct_ollama"):
            out.append(
                f"  {key:<24} median {_f(emb, key, 'median_ms')}, p99 {_f(emb, key, 'p99_ms')}"
            )
        for key in _EMB_CASES:
            if key in emb:
                v = emb[key]
                bad = [s for s in v.get("statuses", []) if s != 200]
                out.append(
                    f"  {key:<24} median {v['median_ms']}, p99 {v['p99_ms']}, "
                    f"added {v['added_ms']:+}" + (f"  NON-200: {bad}" if bad else "")
                )
    w = results.get("workers")
    if w:
        out += ["", f"serve --workers (chat, 32 clients): {_workers_summary(w)}"]
    fail = _get(results, "fleet", "failover")
    if fail:
        out += [
            "",
            f"fleet failover (3 servers, 1 killed, 32 clients): {fail['failed_requests']} failed "
            f"of {fail['requests'] + fail['failed_requests']}; {fail['req_per_s_before_kill']} "
            f"req/s before the kill, {fail['req_per_s_after_kill']} after; back to 90 % in "
            f"{_recovery(fail)}",
        ]
    aff = _get(results, "fleet", "affinity")
    if aff and aff.get("on") and aff.get("off"):
        out.append("fleet affinity (prefix-cache mock, 5 ms seen / 50 ms unseen):")
        for mode in ("off", "on"):
            v = aff[mode]
            out.append(
                f"  affinity {mode:<3} p50 {v['p50_ms']} ms, p99 {v['p99_ms']} ms, "
                f"{v['req_per_s']} req/s, cache misses {v['cache_misses']} "
                f"({v['conversations']} conversations, {v['requests']} requests)"
            )
    prop = results.get("propagation")
    if prop:
        out += ["", f"propagation of a PUT through process A ({prop['samples']} samples, ms):"]
        for key, label in (("process_b_ms", "process B"), ("library_router_ms", "library router")):
            v = prop[key]
            out.append(f"  {label:<15} p50 {v['p50']}, p99 {v['p99']}, max {v['max']}")
    timings = results.get("timings_s")
    if timings:
        out += ["", "scenario wall time s: " + ", ".join(f"{k} {v}" for k, v in timings.items())]
    for name, error in (results.get("errors") or {}).items():
        out.append(f"SCENARIO FAILED {name}: {error}")
    return out


_EMB_CASES = ("openai_to_openai", "openai_to_ollama", "openai_to_ollama_base64", "ollama_to_ollama")


def _f(d: dict[str, Any], *path: str) -> str:
    v = _get(d, *path)
    return "-" if v is None else str(v)


def _recovery(fail: dict[str, Any]) -> str:
    ms = fail.get("recovery_ms")
    return "never within the run" if ms is None else f"{ms} ms (100 ms bins)"


def _workers_summary(w: dict[str, Any]) -> str:
    parts = []
    for n in (1, 2):
        v = w.get(f"workers_{n}") or {}
        errors = f", {v['errors']} errors" if v.get("errors") else ""
        parts.append(
            f"{n} worker(s): {v.get('rps')} req/s on {v.get('cores_busy')} cores "
            f"({v.get('rps_per_core')} req/s per core{errors})"
        )
    return "; ".join(parts) + f"; 2 vs 1: x{w.get('speedup_2_vs_1')}"


# -- RESULTS.md sections ------------------------------------------------------------------


def markdown_sections(doc: dict[str, Any]) -> list[str]:
    """One short section per scenario that ran: its numbers, and what they mean."""
    r = doc["results"]
    lines: list[str] = []
    sections = (_md_tools, _md_embeddings, _md_workers, _md_fleet, _md_propagation, md_profile)
    for section in sections:
        lines += section(r)
    errors = r.get("errors")
    timings = r.get("timings_s")
    if errors or timings:
        lines += ["", "## Scenario run times and failures", ""]
        if timings:
            lines.append(
                "Wall time of each scenario in this run (s): "
                + ", ".join(f"{k} {v}" for k, v in timings.items())
                + "."
            )
        for name, error in (errors or {}).items():
            lines.append(f"- **{name} failed**: `{error}`")
    return lines


def _md_tools(r: dict[str, Any]) -> list[str]:
    tools = r.get("tools")
    if not tools:
        return []
    c1, c32 = tools.get("c1") or {}, tools.get("c32") or {}
    lines = [
        "",
        "## Tool calls (`--only tools`, bench/toolcall.py)",
        "",
        "The `chat` load with `tools` (one function) and a named `tool_choice` in every body, "
        "as instructor and LangChain's `bind_tools` send it, against the same targets as "
        "`chat`: direct, llm-backends, LiteLLM and Portkey (each gateway that started). The "
        "mock answers text, so this prices the request side of a tool call: reading and "
        "forwarding the larger body. Its rows in the table above are *tools ...*.",
        "",
    ]
    chat = r.get("chat") or {}
    for col in c1:
        if col == "direct":
            continue
        a, b = c1.get(col) or {}, c32.get(col) or {}
        vs_chat = ""
        if _get(chat, "c1", col) is not None:
            vs_chat = (
                f" ({_minus_chat(tools, chat, col)} ms against its plain chat p50; plain chat "
                f"c=32 {_n(_get(chat, 'c32', col, 'rps'), 0)} req/s)"
            )
        lines.append(
            f"- {col}: c=1 added p50 {_n(a.get('added_p50_ms'), 3)} ms, "
            f"c=32 {_n(b.get('rps'), 0)} req/s{vs_chat}; "
            f"errors {(a.get('errors') or 0) + (b.get('errors') or 0)}"
        )
    lines += [
        "",
        "Reading it: near-zero *against its plain chat* means a tool call costs the gateway "
        "no more than plain text; the forwarded body is the client's own (same protocol).",
    ]
    return lines


def _n(v: Any, digits: int) -> str:
    if v is None:
        return "-"
    return f"{v:,.{digits}f}"


def _md_embeddings(r: dict[str, Any]) -> list[str]:
    emb = r.get("embeddings")
    if not emb:
        return []
    lines = [
        "",
        "## Embeddings (`--only embeddings`, bench/embeddings_bench.py)",
        "",
        "300 sequential requests of 8 short texts (384-dim vectors from the instant mock), one "
        "client: straight to the mock, and through llm-backends in each protocol pairing.",
        "",
        "| case | median ms | p99 ms | added median ms | statuses |",
        "|---|---:|---:|---:|---|",
    ]
    for key in ("direct_openai", "direct_ollama", *_EMB_CASES):
        v = emb.get(key)
        if v:
            lines.append(
                f"| {key} | {v['median_ms']} | {v['p99_ms']} | "
                f"{'(ref)' if key.startswith('direct') else v.get('added_ms')} | "
                f"{', '.join(map(str, v.get('statuses', [])))} |"
            )
    lines += [
        "",
        "Reading it: *openai_to_openai* and *ollama_to_ollama* forward the body untouched; "
        "*openai_to_ollama* translates `/v1/embeddings` to Ollama's `/api/embed` and back "
        "(floats; *_base64* packs them as the official OpenAI clients ask by default). "
        "*Added* is against the mock's own endpoint of the backend's protocol.",
    ]
    return lines


def _md_workers(r: dict[str, Any]) -> list[str]:
    w = r.get("workers")
    if not w:
        return []
    lines = [
        "",
        "## Workers (`--only workers`, bench/workers.py)",
        "",
        "`llm-backends serve --workers 1` (pinned to core 0) and `--workers 2` (both cores, "
        "shared with the mock and the load generator), chat at 32 clients, rounds alternating.",
        "",
        "| workers | req/s | p99 ms | cores busy | req/s per core | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for n in (1, 2):
        v = w.get(f"workers_{n}") or {}
        lines.append(
            f"| {n} | {_n(v.get('rps'), 0)} | {_n(v.get('p99_ms'), 3)} | {v.get('cores_busy')} "
            f"| {v.get('rps_per_core')} | {v.get('errors')} |"
        )
    lines += [
        "",
        f"2 workers vs 1: x{w.get('speedup_2_vs_1')}. On this 2-core machine the second worker "
        "only gets what the load side leaves of core 1, so the figure that transfers is *req/s "
        "per core*: with N cores given to workers expect about N times it, as long as the "
        "backends keep up.",
    ]
    return lines


def _md_fleet(r: dict[str, Any]) -> list[str]:
    fleet = r.get("fleet")
    if not fleet:
        return []
    lines = ["", "## Fleet (`--only fleet`, bench/fleet_bench.py)"]
    fail = fleet.get("failover")
    if fail:
        lines += [
            "",
            "**Failover.** Three equal mock Ollamas behind one config, 32 clients through the "
            "library router; one server is killed 1.5 s in.",
            "",
            f"- failed client requests: **{fail['failed_requests']}** of "
            f"{fail['requests'] + fail['failed_requests']} (target: 0)",
            f"- throughput: {fail['req_per_s_before_kill']} req/s before the kill, "
            f"{fail['req_per_s_after_kill']} after (median of 100 ms bins)",
            f"- back to 90 % of the throughput before: {_recovery(fail)}",
            "",
            "Zero failures means requests in flight on the killed server were retried on the "
            "others. The mocks answer instantly and share one process with the router and its "
            "clients, so throughput is bounded by that process's CPU, not by the server count: "
            "what matters is that it does not collapse after the kill.",
        ]
    aff = fleet.get("affinity")
    if aff and aff.get("on") and aff.get("off"):
        on, off = aff["on"], aff["off"]
        lines += [
            "",
            "**Conversation affinity.** Three mock servers that answer in 5 ms for a "
            "conversation whose first message they have seen and 50 ms otherwise (a prefix "
            f"cache); the same {on['conversations']} multi-turn conversations, with their think "
            "times, run with affinity off, then on.",
            "",
            "| affinity | p50 ms | p99 ms | req/s | cache misses | requests |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for mode, v in (("off", off), ("on", on)):
            lines.append(
                f"| {mode} | {v['p50_ms']} | {v['p99_ms']} | {v['req_per_s']} | "
                f"{v['cache_misses']} | {v['requests']} |"
            )
        lines += [
            "",
            "With affinity on, a conversation's turns go to the server that already holds its "
            f"prefix: {on['cache_misses']} slow misses against {off['cache_misses']} off (the "
            f"floor is one per conversation, {on['conversations']}); p50 {on['p50_ms']} against "
            f"{off['p50_ms']} ms, {on['req_per_s']} against {off['req_per_s']} req/s. A miss "
            "costs 45 ms more, so the misses saved are the gain; p99 stays at one miss.",
        ]
    return lines


def _md_propagation(r: dict[str, Any]) -> list[str]:
    prop = r.get("propagation")
    if not prop:
        return []
    b, lib = prop["process_b_ms"], prop["library_router_ms"]
    return [
        "",
        "## Propagation (`--only propagation`, bench/propagation.py)",
        "",
        "Two `llm-backends serve` processes A and B over one PostgreSQL, and a library router "
        f"following B's change feed. {prop['samples']} times: PUT a config's `endpoint_url` "
        "through A, then poll B's gateway and the router until both answer from the new "
        "endpoint; time from sending the PUT. B's cache TTL is an hour and its version poll a "
        "minute, so this measures LISTEN/NOTIFY (B) and the change feed (router), not a timer.",
        "",
        "| seen by | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|",
        f"| process B (gateway) | {b['p50']} | {b['p99']} | {b['max']} |",
        f"| library router (feed of B) | {lib['p50']} | {lib['p99']} | {lib['max']} |",
        "",
        f"Target (issue #12): seen everywhere within {PROPAGATION_BOUND_MS / 1000:g} s; "
        f"{'met' if max(b['p99'], lib['p99']) < PROPAGATION_BOUND_MS else 'NOT met'} at p99 "
        "in this run.",
    ]
