"""The scenarios against our gateway alone: `auto` fallback, Admin API changes and the library."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import procs, report, targets
from bench.plan import Plan, log
from bench.targets import Gateway, Http, Mocks


def scenario_auto(gw: Gateway, mocks: Mocks, requests: int = 10) -> dict[str, Any]:
    """Sequential requests to `auto` configs whose MLX endpoint is down; all fall back."""
    out: dict[str, Any] = {}
    baseline = _sequential(gw, "bench-ollama", requests)
    out["ollama_baseline"] = baseline
    for case, model in (
        ("closed_port", "bench-auto-closed"),
        ("accept_then_hang", "bench-auto-hang"),
    ):
        out[case] = _sequential(gw, model, requests)
        log(f"auto {case}: {out[case]['latencies_ms']}")
    return out


def _sequential(gw: Gateway, model: str, n: int) -> dict[str, Any]:
    client = Http(gw.port, timeout=60)
    lat: list[float] = []
    statuses: list[int] = []
    try:
        for _ in range(n):
            r = client.request("POST", targets.CHAT_PATH, targets.chat_body(model), gw.headers)
            lat.append(round(r.seconds * 1000, 3))
            statuses.append(r.status)
    finally:
        client.close()
    following = lat[1:] or lat
    return {
        "latencies_ms": lat,
        "statuses": statuses,
        "first_ms": lat[0] if lat else None,
        "following_median_ms": round(statistics.median(following), 3) if following else None,
        "slow_requests": sum(1 for v in lat if v > 100),
        "max_ms": max(lat) if lat else None,
        "all_ok": all(s == 200 for s in statuses),
    }


def scenario_admin(
    gw: Gateway, mocks: Mocks, ids: dict[str, int], switches: int, limit_s: float = 75.0
) -> dict[str, Any]:
    """PUT the endpoint of `bench-switch` to the other mock; poll chat until it answers so."""
    admin = Http(gw.port)
    probe = Http(gw.port)
    auth = {"Authorization": f"Bearer {targets.admin_token(gw)}"}
    bid = ids["bench-switch"]
    texts = {mocks.main.url: report.MOCK_TEXT, mocks.other.url: targets.OTHER_TEXT}
    samples: list[dict[str, Any]] = []
    current = mocks.main.url
    try:
        for _ in range(switches):
            new = mocks.other.url if current == mocks.main.url else mocks.main.url
            # Make sure the old route is in use (and cached) before the change.
            _answer(probe, gw, "bench-switch")
            t0 = time.perf_counter()
            put = admin.request("PUT", f"/api/llm-backends/{bid}", {"endpoint_url": new}, auth)
            t_put = time.perf_counter()
            if put.status != 200:
                raise RuntimeError(f"PUT answered {put.status}: {put.body[:200]!r}")
            polls, seen = 0, None
            while time.perf_counter() - t0 < limit_s:
                polls += 1
                if _answer(probe, gw, "bench-switch") == texts[new]:
                    seen = time.perf_counter()
                    break
            samples.append(
                {
                    "from_put_sent_ms": round((seen - t0) * 1000, 2) if seen else None,
                    "after_put_returned_ms": round((seen - t_put) * 1000, 2) if seen else None,
                    "put_ms": round((t_put - t0) * 1000, 2),
                    "polls": polls,
                }
            )
            log(f"admin change: {samples[-1]}")
            current = new
    finally:
        admin.close()
        probe.close()
    seen_all = [s["from_put_sent_ms"] for s in samples if s["from_put_sent_ms"] is not None]
    return {
        "samples": samples,
        "median_ms": round(statistics.median(seen_all), 2)
        if len(seen_all) == len(samples)
        else None,
        "limit_s": limit_s,
    }


def _answer(client: Http, gw: Gateway, model: str) -> str | None:
    r = client.request("POST", targets.CHAT_PATH, targets.chat_body(model), gw.headers)
    if r.status != 200:
        return None
    try:
        return str(r.json()["choices"][0]["message"]["content"])
    except (TypeError, KeyError, IndexError):
        return None


def scenario_library(plan: Plan, gw: Gateway | None, mocks: Mocks) -> dict[str, Any]:
    """bench.library_bench in its own process on the gateway core (the gateway sits idle)."""
    out: dict[str, Any] = {}
    admin = (
        ["--admin-url", f"http://127.0.0.1:{gw.port}", "--admin-token", targets.admin_token(gw)]
        if gw is not None
        else []
    )
    for backend, model in (("openai", "bench-lib"), ("ollama", "bench-lib-ollama")):
        # "default": what an application that calls get_llm_router() gets without touching
        # logging (llm-backends' INFO JSON lines); "warning": LOG_LEVEL=WARNING, the floor.
        for mode, level in (("default", ""), ("warning", "WARNING")):
            with tempfile.TemporaryDirectory() as tmp:
                result_path = Path(tmp) / "result.json"
                argv = [
                    procs.PYTHON,
                    "-m",
                    "bench.library_bench",
                    "--mock-url",
                    mocks.main.url,
                    "--backend",
                    backend,
                    "--model",
                    model,
                    "--calls",
                    str(plan.lib_calls),
                    "--blocks",
                    str(plan.lib_blocks),
                    "--json-out",
                    str(result_path),
                    *admin,
                ]
                if level:
                    argv += ["--log-level", level]
                key = f"{backend}/logs-{mode}"
                out[key] = procs.run_json(
                    argv, cpus=procs.GATEWAY_CPU, timeout=300, result_path=result_path
                )
            log(
                f"library {key}: router +{out[key]['overhead_cpu_us']} µs CPU, "
                f"+{out[key]['overhead_wall_us']} µs wall per call"
            )
    return out
