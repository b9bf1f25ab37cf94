"""Turns one run's measurements into `bench/results/latest.json`, `bench/RESULTS.md` and a table.

The targets checked here are the issue's: on this machine, one worker each, same run. The
rendering (the printed table and the markdown) is in bench/report_md.py.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from bench import before, procs, relay, report_md, report_scenarios, targets
from bench.mock_backend import DEFAULT_TEXT
from bench.nested import get as _get
from bench.report_perf import performance_checks

MOCK_TEXT = DEFAULT_TEXT
LLMB = ("llm-backends", "llm-backends (stub)")
HTTPCLIENT_JSON = procs.BENCH / "results" / "httpclient.json"


def brief(res: dict[str, Any]) -> str:
    parts = [
        f"{res.get('rps')} req/s",
        f"p50 {res.get('p50_ms')} ms",
        f"p99 {res.get('p99_ms')} ms",
    ]
    if res.get("ttfb_p50_ms") is not None:
        parts.append(f"TTFB p50 {res['ttfb_p50_ms']} ms")
    if res.get("errors"):
        parts.append(f"ERRORS {res['errors']} {res.get('error_detail')}")
    return ", ".join(parts)


# -- machine and versions -----------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gib": mem_gib,
        "kernel": platform.release(),
        "os": _os_name(),
        "python": platform.python_version(),
    }


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def versions(gateways: dict[str, targets.Gateway]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pkg in (
        "llm-backends",
        "fastapi",
        "starlette",
        "uvicorn",
        "uvloop",
        "httptools",
        "aiohttp",
        "orjson",
        "pydantic",
        "sqlalchemy",
        "structlog",
    ):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "-"
    lite = gateways.get("litellm")
    out["litellm"] = (
        lite.version
        if lite
        else (targets._pkg_version(str(targets.LITELLM_VENV / "bin" / "python"), "litellm") or "-")
    )
    portkey = gateways.get("portkey")
    out["portkey"] = (
        portkey.version if portkey else (targets._npm_version(targets.PORTKEY_PACKAGE) or "-")
    )
    out["wrk"] = targets.wrk_version() or "-"
    return out


# -- checks against the targets -----------------------------------------------------


def checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target: value, bound, pass (None when it could not be measured in this run)."""
    out: list[dict[str, Any]] = []
    name = next(
        (
            n
            for n in LLMB
            if _get(results, "chat", "c32", n) is not None
            or _get(results, "resources", n) is not None
        ),
        LLMB[0],
    )

    def add(label: str, value: Any, bound: str, ok: bool | None) -> None:
        out.append({"target": label, "value": value, "bound": bound, "pass": ok})

    ours = _get(results, "chat", "c32", name, "rps")
    lite = _get(results, "chat", "c32", "litellm", "rps")
    ratio = round(ours / lite, 1) if ours and lite else None
    add(
        "throughput c=32 vs LiteLLM",
        f"{ratio}x" if ratio else None,
        ">= 10x",
        None if ratio is None else ratio >= 10,
    )
    added = _get(results, "chat", "c1", name, "added_p50_ms")
    lite_added = _get(results, "chat", "c1", "litellm", "added_p50_ms")
    add(
        "added latency c=1 (p50)",
        None if added is None else f"{added:.3f} ms",
        "< 0.5 ms",
        None if added is None else added < 0.5,
    )
    add(
        "added latency c=1 vs LiteLLM's",
        None if added is None or not lite_added else f"{added / lite_added:.3f} of it",
        "<= 0.1 of it",
        None if added is None or not lite_added else added <= 0.1 * lite_added,
    )
    for backend in ("openai", "ollama"):
        lib = _get(results, "library", f"{backend}/logs-default", "overhead_cpu_us")
        add(
            f"library overhead per call, {backend} backend (CPU, default INFO JSON logs)",
            None if lib is None else f"{lib} µs",
            "< 100 µs",
            None if lib is None else lib < 100,
        )
    rss = _get(results, "resources", name, "peak_rss_mb")
    loaded = _get(results, "resources", name, "after_load")
    add(
        "peak RSS under load",
        None if rss is None else f"{rss} MB",
        "< 150 MB",
        None if rss is None or not loaded else rss < 150,
    )
    cold = _get(results, "resources", name, "cold_start_median_s")
    add(
        "cold start",
        None if cold is None else f"{cold} s",
        "< 2 s",
        None if cold is None else cold < 2,
    )
    out += performance_checks(results, name)
    out += report_scenarios.checks(results, name)
    return out


# -- documents ------------------------------------------------------------------------------


def build(
    *,
    args: argparse.Namespace,
    argv: list[str],
    plan: dict[str, Any],
    results: dict[str, Any],
    gateways: dict[str, targets.Gateway],
    notes: dict[str, str],
    setup_error: str | None,
    elapsed_s: float,
    mocks: targets.Mocks,
    loadavg: tuple[tuple[float, ...], tuple[float, ...]],
    before_arm: before.Arm | None = None,
    relay_arm: relay.Arm | None = None,
) -> dict[str, Any]:
    commands = {name: _command(gw) for name, gw in gateways.items()}
    arm: dict[str, Any] | None = None
    if before_arm is not None:
        gw = before_arm.gateway
        commands[gw.name] = _command(gw)
        arm = {**before_arm.info(), "log": str(gw.child.log_path) if gw.child else None}
    if relay_arm is not None:
        commands[relay.NAME] = " ".join(
            [*procs.pin_prefix(procs.GATEWAY_CPU), "python -m bench.relay --port P --target-port M"]
        )
    commands["mock"] = " ".join(
        [
            *procs.pin_prefix(procs.CLIENT_CPU),
            "python",
            "-m",
            "bench.mock_backend",
            "--port",
            "P",
            "[--chunks 8 --chunk-delay-ms 5]",
        ]
    )
    commands["load (non-streaming)"] = " ".join(
        [
            *procs.pin_prefix(procs.CLIENT_CPU),
            "python",
            "-m",
            "bench.load",
            "--engine",
            "auto",
            "--url",
            "URL",
            "-c",
            "1|32",
            "-d",
            str(plan["duration"]),
            "--warmup",
            str(plan["warmup"]),
        ]
    )
    commands["load (streaming)"] = commands["load (non-streaming)"].replace(
        "--engine auto", "--engine python --stream"
    )
    doc = {
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": " ".join(["python -m bench.run", *argv]),
        "elapsed_s": round(elapsed_s, 1),
        "plan": plan,
        "machine": machine(),
        # Other work on the machine (a test suite, say) adds noise: this tells if there was any.
        "loadavg_1m": {"start": round(loadavg[0][0], 2), "end": round(loadavg[1][0], 2)},
        "versions": versions(gateways),
        "pinning": {
            "gateway_cpu": procs.GATEWAY_CPU if procs.pin_prefix("0") else None,
            "client_cpu": procs.CLIENT_CPU if procs.pin_prefix("1") else None,
            "how": "taskset -c 0 for the gateway under test (and the library benchmark "
            "process); taskset -c 1 for the mock backends, the load generator and the "
            "orchestrator"
            if procs.pin_prefix("0")
            else "not pinned (fewer than 2 cores or no taskset)",
        },
        "gateways": {
            n: {"version": g.version, "log": str(g.child.log_path) if g.child else None}
            for n, g in gateways.items()
        },
        #: The code before issue #15 (bench/before.py): a column of chat and stream.
        "before_arm": arm,
        #: The zero-logic TCP relay (bench/relay.py): chat c=1 and stream TTFB c=1.
        "relay_arm": relay_arm.info() if relay_arm else None,
        "notes": notes,
        "setup_error": setup_error,
        "commands": commands,
        "results": results,
        "checks": checks(results),
        "httpclient_compare": _httpclient(),
    }
    return doc


def _command(gw: targets.Gateway) -> str:
    """The gateway's command line as run, with its environment; secrets and paths shortened."""
    env = [f"-u {key}" for key, value in gw.env.items() if value is None]
    for key, value in gw.env.items():
        if value is None:
            continue
        if any(s in key for s in ("TOKEN", "KEY")) and "FILE" not in key:
            value = "<random>"
        env.append(f"{key}={report_md.short(value)}")
    argv = [report_md.short(a) for a in gw.argv]
    return " ".join(["env", *env, *procs.pin_prefix(procs.GATEWAY_CPU), *argv])


def _httpclient() -> dict[str, Any] | None:
    if not HTTPCLIENT_JSON.exists():
        return None
    try:
        return json.loads(HTTPCLIENT_JSON.read_text())  # type: ignore[no-any-return]
    except ValueError:
        return None


def write(doc: dict[str, Any], json_path: Path, md_path: Path) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    md_path.write_text(report_md.markdown(doc))
