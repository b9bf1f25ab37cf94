"""`--only workers`: chat throughput of `llm-backends serve --workers 1` and `--workers 2`.

Each server gets its own database and the one config it needs. One worker runs on core 0
(as in the other scenarios); two workers may use both cores, which they share with the mock
and the load generator (core 1) - on a 2-core machine that is the whole machine, so the
second worker can only take the CPU the load side leaves. The figure that transfers to other
machines is the gateway's CPU per request: `cores_busy` (CPU seconds of the whole process
tree per second of load) and `rps_per_core`; with N cores dedicated to workers, expect about
N x rps_per_core, as long as the backends and the network keep up.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import procs, targets

#: (workers, cores the server may use).
LAYOUTS = ((1, procs.GATEWAY_CPU), (2, "0,1"))
CONCURRENCY = 32


def _start(work: Path, mocks: targets.Mocks, workers: int, cpus: str) -> targets.Gateway:
    folder = work / f"workers-{workers}"
    folder.mkdir(parents=True, exist_ok=True)
    gw = targets.llm_backends_gateway(folder, mocks.main.url, stub=False, log_level=None)
    gw.name = f"llm-backends --workers {workers}"
    gw.argv = [*gw.argv, "--workers", str(workers)]
    gw.port = procs.free_port()
    argv = [a.replace("{port}", str(gw.port)) for a in gw.argv]
    gw.child = procs.spawn(
        f"workers-{workers}", argv, port=gw.port, cpus=cpus, env=gw.env, log_dir=folder, cwd=folder
    )
    procs.wait_http(gw.child, "/ready", 90, ok=lambda status: status == 200)
    targets.create_configs(gw, [targets.cfg("bench-openai", "openai", mocks.main.url)])
    return gw


def scenario_workers(
    duration: float,
    warmup: float,
    rounds: int,
    work: Path,
    mocks: targets.Mocks,
    load: Callable[..., dict[str, Any]],
) -> dict[str, Any]:
    """`load` is bench.rounds.load (one closed-loop run); rounds alternate 1 and 2 workers."""
    hz = os.sysconf("SC_CLK_TCK")
    gateways = [(n, _start(work, mocks, n, cpus)) for n, cpus in LAYOUTS]
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n, _ in LAYOUTS}
    try:
        for r in range(rounds):
            order = gateways if r % 2 == 0 else gateways[::-1]
            for n, gw in order:
                procs.wait_idle([gw.pid])
                before = procs.cpu_ticks(gw.pid)
                result = load(
                    gw.target("bench-openai"),
                    concurrency=CONCURRENCY,
                    duration=duration,
                    warmup=warmup,
                )
                # The server idles outside the load window (warm-up included).
                busy = (procs.cpu_ticks(gw.pid) - before) / hz / (duration + warmup)
                result["cores_busy"] = round(busy, 2)
                runs[n].append(result)
    finally:
        for _, gw in gateways:
            gw.stop()
    out: dict[str, Any] = {}
    for n, results in runs.items():
        rps = [r["rps"] for r in results if r.get("rps")]
        busy = [r["cores_busy"] for r in results]
        median_rps = statistics.median(rps) if rps else None
        median_busy = statistics.median(busy) if busy else None
        out[f"workers_{n}"] = {
            "rps": median_rps,
            "p99_ms": statistics.median(r["p99_ms"] for r in results if r.get("p99_ms")),
            "errors": sum(int(r.get("errors", 0)) for r in results),
            "cores_busy": median_busy,
            "rps_per_core": round(median_rps / median_busy, 1)
            if median_rps and median_busy
            else None,
            "rounds": results,
        }
    one, two = out["workers_1"]["rps"], out["workers_2"]["rps"]
    out["speedup_2_vs_1"] = round(two / one, 2) if one and two else None
    return out


def summary(result: dict[str, Any]) -> str:
    parts = [
        f"{n} worker(s): {result[f'workers_{n}']['rps']} req/s on "
        f"{result[f'workers_{n}']['cores_busy']} cores ({result[f'workers_{n}']['rps_per_core']}"
        " req/s per core)"
        for n, _ in LAYOUTS
    ]
    return "; ".join(parts) + f"; 2 vs 1: x{result['speedup_2_vs_1']}"
