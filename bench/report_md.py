"""Renders one run's document: the terminal table and bench/RESULTS.md."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench import procs, relay, report_scenarios
from bench.nested import get as _get


def short(text: str) -> str:
    """`text` with the project's root path taken off (paths shown relative to the repo)."""
    return text.replace(str(procs.ROOT) + "/", "")


def _md_before(doc: dict[str, Any]) -> list[str]:
    """The Method bullet on the before arm (bench/before.py), when it was in the run."""
    arm = doc.get("before_arm")
    if not arm:
        return [
            "- No *before* column in this run (`--no-before`, or it did not start): issue "
            "#15's stream TTFB targets fall back to figures recorded before the issue."
        ]
    return [
        f"- *{arm['name']}*: {arm['label']}, i.e. this project's `src` at commit "
        f"`{arm['commit'][:12]}` (main when the work on issue #15 started; backend calls on "
        "aiohttp), extracted with `git archive` and served like *llm-backends* (same command, "
        "settings, core, configs through its Admin API, own database), from the same venv with "
        f"`PYTHONPATH` at the extracted `src` (checked: `llm_backends` imported from "
        f"`{short(arm['module_file'])}`). Measured in `chat` and `stream` only, interleaved "
        "like the others: issue #15's targets compare against it in the same run, since this "
        "VM's speed varies about 2x from day to day.",
    ]


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.{digits}f}"
    return str(v)


def _columns(doc: dict[str, Any]) -> list[str]:
    cols = ["direct"]
    for section in ("chat", "ollama", "stream", "tools"):
        for sub in (doc["results"].get(section) or {}).values():
            for name in sub:
                if name not in cols:
                    cols.append(name)
    for name in doc["results"].get("resources") or {}:
        if name not in cols:
            cols.append(name)
    return cols


def rows(doc: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(label, one cell per column) for the main comparison table."""
    r = doc["results"]
    cols = _columns(doc)
    out: list[tuple[str, list[str]]] = []

    def row(label: str, getter: Any) -> None:
        out.append((label, [getter(c) for c in cols]))

    _chat_rows(row, r.get("chat"), "chat")
    _chat_rows(row, r.get("ollama"), "ollama chat")
    report_scenarios.tools_rows(row, r)
    ttfb = _get(r, "stream", "ttfb_c1")
    if ttfb:
        row("stream TTFB p50 ms (paced, c=1)", lambda c: _fmt(_get(ttfb, c, "ttfb_p50_ms"), 3))
        row(
            "stream added TTFB ms",
            lambda c: _fmt(_get(ttfb, c, "added_ttfb_p50_ms"), 3) if c != "direct" else "(ref)",
        )
    instant = _get(r, "stream", "ttfb_c1_instant")
    if instant:
        row(
            "stream TTFB p50 ms (instant, c=1)",
            lambda c: _fmt(_get(instant, c, "ttfb_p50_ms"), 3),
        )
        row(
            "stream added TTFB ms (instant)",
            lambda c: _fmt(_get(instant, c, "added_ttfb_p50_ms"), 3) if c != "direct" else "(ref)",
        )
    s32 = _get(r, "stream", "c32")
    if s32:
        row("stream c=32 req/s", lambda c: _fmt(_get(s32, c, "rps"), 0))
        row("stream c=32 p50 ms", lambda c: _fmt(_get(s32, c, "p50_ms"), 3))
        row(
            "stream errors",
            lambda c: _fmt(
                (_get(s32, c, "errors") or 0)
                + (_get(ttfb, c, "errors") or 0)
                + (_get(instant, c, "errors") or 0)
                if any(_get(s, c) for s in (s32, ttfb, instant))
                else None
            ),
        )
    res = r.get("resources") or {}
    if res:
        row("peak RSS MB (VmHWM, after load)", lambda c: _fmt(_get(res, c, "peak_rss_mb"), 1))
        row("idle RSS MB after start", lambda c: _fmt(_get(res, c, "idle_rss_mb"), 1))
        row("cold start s (median)", lambda c: _fmt(_get(res, c, "cold_start_median_s"), 3))
    return out


def _chat_rows(row: Callable[[str, Any], None], section: Any, name: str) -> None:
    """req/s, p50 / p99, added p50 (c=1) and errors of a non-streaming chat section."""
    for conc in ("c1", "c32"):
        sec = _get(section, conc)
        if not sec:
            continue
        n = conc[1:]
        row(f"{name} c={n} req/s", lambda c, s=sec: _fmt(_get(s, c, "rps"), 0))
        row(
            f"{name} c={n} p50 / p99 ms",
            lambda c, s=sec: (
                f"{_fmt(_get(s, c, 'p50_ms'), 3)} / {_fmt(_get(s, c, 'p99_ms'), 3)}"
                if _get(s, c)
                else "-"
            ),
        )
        if conc == "c1":
            row(
                f"{name} c=1 added p50 ms",
                lambda c, s=sec: _fmt(_get(s, c, "added_p50_ms"), 3) if c != "direct" else "(ref)",
            )
        row(f"{name} c={n} errors", lambda c, s=sec: _fmt(_get(s, c, "errors")))


def table(doc: dict[str, Any]) -> str:
    cols = _columns(doc)
    body = rows(doc)
    width = max([len(label) for label, _ in body] + [30])
    cells = [len(v) for _, vals in body for v in vals]
    cw = max([len(c) for c in cols] + cells + [12]) + 3
    lines = [f"{'':<{width}}" + "".join(f"{c:>{cw}}" for c in cols)]
    lines += [f"{label:<{width}}" + "".join(f"{v:>{cw}}" for v in vals) for label, vals in body]
    lines += _extra_lines(doc)
    return "\n".join(lines)


def _extra_lines(doc: dict[str, Any]) -> list[str]:
    r = doc["results"]
    out: list[str] = []
    lib = r.get("library")
    if lib:
        out.append("")
        out.append(
            "library: router.generate() beyond a raw aiohttp call, and beyond a raw call on "
            "the router's own pool, per call (median of paired blocks)"
        )
        for key, v in lib.items():
            out.append(
                f"  {key:<24} +{v['overhead_cpu_us']:>7} µs CPU  +{v['overhead_wall_us']:>7}"
                f" µs wall   (raw {v['raw_wall_us']} µs, router {v['router_wall_us']} µs;"
                f" config from {v['config_source']})"
            )
            if "overhead_vs_lean_cpu_us" in v:
                out.append(
                    f"  {'':<24} +{v['overhead_vs_lean_cpu_us']:>7} µs CPU"
                    f"  +{v['overhead_vs_lean_wall_us']:>7} µs wall   beyond the pool's own"
                    f" raw call ({v['lean_wall_us']} µs)"
                )
    auto = r.get("auto")
    if auto:
        out.append("")
        out.append("auto with MLX down (sequential requests, ms):")
        for case in ("ollama_baseline", "closed_port", "accept_then_hang"):
            v = auto.get(case)
            if v:
                out.append(
                    f"  {case:<18} first {v['first_ms']}, following median "
                    f"{v['following_median_ms']}, all 200: {v['all_ok']}; "
                    f"{v['latencies_ms']}"
                )
    admin = r.get("admin")
    if admin:
        out.append("")
        out.append(
            f"admin change seen by the gateway: median {admin['median_ms']} ms from PUT "
            f"sent; samples {[s['from_put_sent_ms'] for s in admin['samples']]}"
        )
    out += report_scenarios.extra_lines(r)
    if doc.get("checks"):
        out.append("")
        out.append("targets (issue):")
        for c in doc["checks"]:
            if c.get("info"):  # a figure beside the targets, no bound of its own
                out.append(f"  [info] {c['target']}: {_fmt(c['value'])}")
                continue
            mark = {True: "PASS", False: "FAIL", None: "n/a "}[c["pass"]]
            out.append(f"  [{mark}] {c['target']}: {_fmt(c['value'])} (want {c['bound']})")
    for name, note in (doc.get("notes") or {}).items():
        out.append(f"NOTE {name}: {note}")
    return out


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    v = doc["versions"]
    cols = _columns(doc)
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `make bench` (`{doc['command']}`) on {doc['generated_at']}, "
        f"in {doc['elapsed_s']:.0f} s. Reproduce with `make bench` "
        "(or `make bench BENCH_ARGS=--quick`); the raw numbers are in "
        "`bench/results/latest.json`.",
        "",
        "## Machine",
        "",
        f"- {m['nproc']} CPU cores: {m['cpu_model']}; {m['memory_gib']} GiB RAM",
        f"- {m['os']}, Linux {m['kernel']}, Python {m['python']}",
        f"- 1-minute load average at start {doc['loadavg_1m']['start']}, at end "
        f"{doc['loadavg_1m']['end']} (the run itself keeps about 1-2 busy; much more means "
        "other work shared the machine and the figures are noisier)",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
        "## Method",
        "",
        f"- Pinning: {doc['pinning']['how']}. The gateway under test has a core to itself, "
        "as it would in production; the mock and the load generator together cost well under "
        "a core at the rates reached (see *direct*).",
        "- Interleaved rounds: direct, relay (chat c=1, stream TTFB c=1), llm-backends, before "
        "(chat and stream only), LiteLLM, Portkey, then again starting one further; "
        f"{doc['plan']['rounds']} rounds of {doc['plan']['duration']:g} s after "
        f"{doc['plan']['warmup']:g} s of warm-up each; every figure is the median over rounds, "
        "and added latency is paired per round (gateway p50 minus direct p50 of that round).",
        "- Load generator, its own process: `wrk` (C, one thread, Lua script "
        "`bench/lua/post_json.lua`) for non-streaming runs; for streaming, `bench/load.py`'s "
        "Python engine (raw asyncio Protocol + httptools on uvloop), the one that sees the "
        "first body byte. Both are closed-loop, keep-alive, one connection per client.",
        "- Ollama rows: the same non-streaming load on Ollama's `POST /api/chat` "
        '(`"stream": false`, `options.num_predict` 16), direct to the mock\'s own /api/chat '
        "and through llm-backends' (config `bench-ollama`, an `ollama` backend on the same "
        "mock). LiteLLM proxy serves no Ollama-compatible API, hence its `-`.",
        "- Mock backend (`bench/mock_backend.py`): raw asyncio + httptools on uvloop; answers "
        "instantly unless paced. The paced stream mock sends 8 chunks 5 ms apart, so TTFB "
        "shows whether a gateway really streams.",
        "- LiteLLM proxy: own venv (`bench/.venv-litellm`, `bench/litellm/requirements.txt`), "
        "one worker, master key, no database (`bench/litellm/config.yaml`).",
        "- Portkey: its open-source gateway (`@portkey-ai/gateway`, Node, pinned by "
        "`bench/portkey/package-lock.json`, with `hono` 4.9.7 and `@hono/node-server` 1.13.5 "
        "pinned through npm `overrides`: newer ones break its SSE), `NODE_ENV=production`, "
        "`--headless`, one process, routed to the same mock by header (`x-portkey-provider: "
        "openai`, `x-portkey-custom-host: <mock>/v1`). Not like-for-like: Portkey checks no key "
        "of its own and looks up no per-model config (the upstream comes with every request); "
        "it serves no Ollama API (its `-`); and it delays its first streamed chunk by design, "
        "so its stream TTFB is not only its own overhead.",
        *_md_before(doc),
        *relay.method_lines(doc),
        "- Gateways run with their default logging unless `--gateway-log-level` is given.",
        "",
        "## Results",
        "",
        "| | " + " | ".join(cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for label, vals in rows(doc):
        lines.append(f"| {label} | " + " | ".join(vals) + " |")
    extra = _extra_lines(doc)
    while extra and not extra[0]:
        extra = extra[1:]
    if extra:
        lines += ["", "```", *extra, "```"]
    lines += [
        "",
        "Reading it: *added* latency is the gateway's p50 minus direct's p50 in the same round. "
        "It includes two cross-core round trips (load generator to gateway, gateway to mock), "
        "which the *direct, mock on core 0* column prices on its own. TTFB is measured to the "
        "first body byte; the paced mock's first chunk leaves at once, so added TTFB is what the "
        "gateway spends before it starts streaming. Between paced requests (8 chunks 5 ms "
        "apart) the gateway's core sits idle, and on this VM waking an idle vCPU adds about "
        "0.5 ms to the first byte (and to each chunk); the instant mock keeps the core busy, so "
        "its added TTFB is the gateway's own work.",
    ]
    lines += report_scenarios.markdown_sections(doc)
    hc = doc.get("httpclient_compare")
    if hc:
        lines += [
            "",
            "## HTTP client for the router (`python -m bench.httpclient_compare`)",
            "",
            "Pooled client, POST JSON to the mock; client on core 0, mock on core 1. "
            "µs per call; CPU µs is this process's CPU time per call.",
            "",
            "| client/loop | c=1 wall µs | c=1 CPU µs | c=32 calls/s | c=32 CPU µs |",
            "|---|---:|---:|---:|---:|",
        ]
        for key in sorted({k.rsplit("/", 1)[0] for k in hc["cases"]}):
            a, b = hc["cases"][f"{key}/c1"], hc["cases"][f"{key}/c32"]
            lines.append(
                f"| {key} | {a['wall_us']} | {a['cpu_us']} | {b['calls_per_s']:.0f} "
                f"| {b['cpu_us']} |"
            )
        js = hc.get("json_us_per_pair", {})
        lines.append("")
        lines.append(
            f"JSON encode request + decode response: stdlib json {js.get('json')} µs, "
            f"orjson {js.get('orjson')} µs ({hc.get('versions')})."
        )
    lines += ["", "## Commands", ""]
    for name, cmd in doc["commands"].items():
        lines.append(f"- {name}: `{cmd}`")
    if doc.get("notes") or doc.get("setup_error"):
        lines += ["", "## Notes", ""]
        for name, note in (doc.get("notes") or {}).items():
            lines.append(f"- {name}: {note}")
        if doc.get("setup_error"):
            lines.append(f"- setup: {doc['setup_error']}")
    lines.append("")
    return "\n".join(lines)
