"""One closed-loop load run on the client core, interleaved rounds of them, and their medians."""

from __future__ import annotations

import statistics
import subprocess
from typing import Any, Literal

from bench import procs, report, targets
from bench.plan import Plan, log
from bench.targets import Target

#: Which API a load run speaks: OpenAI's `POST /v1/chat/completions` or Ollama's `/api/chat`.
Api = Literal["openai", "ollama"]


def load(
    target: Target,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    stream: bool = False,
    paced: bool = False,
    engine: str = "auto",
    api: Api = "openai",
) -> dict[str, Any]:
    """One closed-loop run of bench.load on the client core."""
    import json

    url, body = _request(target, api, paced)
    argv = procs.load_argv(
        url,
        json.dumps(body),
        concurrency=concurrency,
        duration=duration,
        warmup=warmup,
        engine=engine,
        stream=stream,
        extra=target.header_args(paced),
    )
    return procs.run_json(argv, cpus=procs.CLIENT_CPU, timeout=duration + warmup + 90)


def _request(target: Target, api: Api, paced: bool) -> tuple[str, dict[str, Any]]:
    """URL and JSON body of one load run's requests."""
    if api == "ollama":
        if target.ollama_model is None:
            raise ValueError(f"{target.name} serves no Ollama API")
        return target.ollama_url, targets.ollama_chat_body(target.ollama_model)
    model = target.paced_model if paced else target.chat_model
    return target.chat_url, targets.chat_body(model)


def interleaved(
    plan: Plan, tgts: list[Target], what: str, run_one: Any
) -> dict[str, list[dict[str, Any]]]:
    """`run_one(target)` for each target, `rounds` times, rotating the starting target."""
    out: dict[str, list[dict[str, Any]]] = {t.name: [] for t in tgts}
    rounds = plan.rounds
    for r in range(rounds):
        order = tgts[r % len(tgts) :] + tgts[: r % len(tgts)]
        for t in order:
            plan.settle()
            try:
                res = run_one(t)
            except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as error:
                # One failed run (a crashed gateway, say) must not sink the whole benchmark.
                res = {"rps": None, "errors": 1, "failed": str(error)[-400:]}
            out[t.name].append(res)
            log(f"{what} round {r + 1}/{rounds} {t.name}: {report.brief(res)}")
    return out


def summarize_load(
    runs: dict[str, list[dict[str, Any]]], ref: str = "direct", key: str = "p50_ms"
) -> dict[str, dict[str, Any]]:
    """Medians over rounds, plus the added latency vs `ref` paired round by round."""
    out: dict[str, dict[str, Any]] = {}
    for name, rs in runs.items():
        s: dict[str, Any] = {"rounds": rs}
        for metric in ("rps", "p50_ms", "p99_ms", "mean_ms", "ttfb_p50_ms", "ttfb_p99_ms"):
            vals = [r[metric] for r in rs if r.get(metric) is not None]
            s[metric] = round(statistics.median(vals), 4) if vals else None
        s["errors"] = sum(int(r.get("errors", 0)) for r in rs)
        s["requests"] = sum(int(r.get("requests", 0)) for r in rs)
        if name != ref and ref in runs:
            diffs = [
                a[key] - b[key]
                for a, b in zip(rs, runs[ref], strict=False)
                if a.get(key) is not None and b.get(key) is not None
            ]
            s["added_" + key] = round(statistics.median(diffs), 4) if diffs else None
        out[name] = s
    return out
