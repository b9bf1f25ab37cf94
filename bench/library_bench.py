"""Scenario 3: what `router.generate()` costs per call beyond a raw HTTP call to the same mock.

Runs in its own process (pinned by the parent to the gateway's core; the mock sits on the
other one). Three arms send the same request to the same URL: a raw call on a pooled aiohttp
session (what an application would write itself), a raw call on the router's own connection
pool (`llm_backends.router.transport.HttpPool`), and `router.generate()`. Router minus raw
aiohttp is what a user saves or pays by using the library; router minus the raw pool call is
the router's own work: cache lookup, breaker, request building, response parsing, Result
assembly, stats bookkeeping, the log line. Blocks of calls alternate (raw, lean, router,
raw, ...) and the medians of the paired blocks are compared.

    python -m bench.library_bench --mock-url http://127.0.0.1:9000 [--admin-url URL]
        [--backend openai|ollama] [--calls 2000] [--blocks 7] [--loop asyncio|uvloop]

With `--admin-url` the router is the one an application gets: `get_llm_router()` configured
by environment variables (ADMIN_API_URL, ADMIN_API_TOKEN, LLM_ROUTER_CACHE_TTL=60, LOG_LEVEL),
config fetched from the Admin API and cached, stats batched to it, and, since this process
never configures structlog itself, llm-backends' own JSON log lines on stdout. Without it a
static in-process config source is used. Prints one JSON object (or writes it to --json-out:
the log lines share stdout, and the last of them are flushed at exit).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

from llm_backends import LLMRouter, get_llm_router
from llm_backends.router.transport import HttpPool
from llm_backends.router.types import BackendConfig

PROMPT = "hi"


class StaticSource:
    """A config source that answers from memory (no Admin API needed)."""

    def __init__(self, config: BackendConfig) -> None:
        self.config = config

    async def get(self, model_name: str) -> BackendConfig | None:
        return self.config if model_name == self.config.model_name else None


def raw_request(backend: str, mock_url: str, model: str) -> tuple[str, dict[str, Any]]:
    """The request the router's backend sends for generate(): same URL, same JSON."""
    if backend == "ollama":
        body = {
            "model": model,
            "prompt": PROMPT,
            "stream": False,
            "options": {"temperature": 0.2, "num_predict": 16},
        }
        return mock_url + "/api/generate", body
    body = {"model": model, "prompt": PROMPT, "temperature": 0.2, "max_tokens": 16, "stream": False}
    return mock_url + "/v1/completions", body


Call = Callable[[], Awaitable[str]]


def pool_call(pool: HttpPool, backend: str, mock_url: str, model: str) -> Call:
    """The raw call on the router's own pool: the request `generate()` sends, built by hand."""
    url, payload = raw_request(backend, mock_url, model)
    headers = (("Content-Type", "application/json"),)

    async def call() -> str:
        response = await pool.request(
            b"POST", url, orjson.dumps(payload), headers, connect_timeout=3, total=60
        )
        try:
            body, _ = await response.read(1 << 24)
        finally:
            response.release()
        if response.status != 200:
            raise RuntimeError(f"lean call: HTTP {response.status}")
        obj = orjson.loads(body)
        return str(obj["response"] if backend == "ollama" else obj["choices"][0]["text"])

    return call


def static_router(backend: str, mock_url: str, model: str) -> LLMRouter:
    """A router whose one config (`model` on the mock) comes from memory, stats off."""
    config = BackendConfig(
        model_name=model,
        backend_type=backend,
        endpoint_url=mock_url,
        max_tokens=16,
        timeout_seconds=60,
    )
    return LLMRouter(config_source=StaticSource(config), stats_sink=None, cache_ttl=60)


def generate_call(router: LLMRouter, model: str) -> Call:
    async def call() -> str:
        result = await router.generate(model=model, prompt=PROMPT, temperature=0.2, max_tokens=16)
        return str(result["response"])

    return call


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    model = args.model
    url, payload = raw_request(args.backend, args.mock_url, model)
    headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=512, limit_per_host=0, keepalive_timeout=60)
    session = aiohttp.ClientSession(connector=connector)
    timeout = aiohttp.ClientTimeout(total=60)

    async def raw_call() -> str:
        # Serialized per call, as any caller building its own request would.
        data = orjson.dumps(payload)
        async with session.post(url, data=data, headers=headers, timeout=timeout) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"raw call: HTTP {resp.status}")
            obj = orjson.loads(body)
            return str(obj["response"] if args.backend == "ollama" else obj["choices"][0]["text"])

    pool = HttpPool(asyncio.get_running_loop())
    lean_call = pool_call(pool, args.backend, args.mock_url, model)

    if args.admin_url:
        os.environ.update(
            ADMIN_API_URL=args.admin_url,
            LLM_ROUTER_CACHE_TTL="60",
            LOG_LEVEL=args.log_level or "INFO",
            **({"ADMIN_API_TOKEN": args.admin_token} if args.admin_token else {}),
        )
        router = get_llm_router()
    else:
        router = static_router(args.backend, args.mock_url, model)

    router_call = generate_call(router, model)

    try:
        # Warm-up: fills the route cache, opens pooled connections, warms code paths.
        first = await router.generate(model=model, prompt=PROMPT, temperature=0.2, max_tokens=16)
        if first["backend"] != args.backend:
            raise RuntimeError(f"router answered from {first['backend']}, not {args.backend}")
        for _ in range(200):
            await raw_call()
            await lean_call()
            await router_call()
        samples: dict[str, dict[str, list[float]]] = {"raw": {}, "lean": {}, "router": {}}
        for _ in range(args.blocks):
            arms = (("raw", raw_call), ("lean", lean_call), ("router", router_call))
            for name, call in arms:
                wall0, cpu0 = time.perf_counter(), time.process_time()
                for _ in range(args.calls):
                    await call()
                wall = (time.perf_counter() - wall0) / args.calls * 1e6
                cpu = (time.process_time() - cpu0) / args.calls * 1e6
                samples[name].setdefault("wall_us", []).append(wall)
                samples[name].setdefault("cpu_us", []).append(cpu)
    finally:
        await router.close()
        await session.close()
        await pool.close()

    med = {n: {m: statistics.median(v) for m, v in s.items()} for n, s in samples.items()}
    # Paired per block: each router block against the raw block just before it.
    paired_wall = [
        r - w for r, w in zip(samples["router"]["wall_us"], samples["raw"]["wall_us"], strict=True)
    ]
    paired_cpu = [
        r - w for r, w in zip(samples["router"]["cpu_us"], samples["raw"]["cpu_us"], strict=True)
    ]
    lean_cpu = [
        r - w for r, w in zip(samples["router"]["cpu_us"], samples["lean"]["cpu_us"], strict=True)
    ]
    lean_wall = [
        r - w for r, w in zip(samples["router"]["wall_us"], samples["lean"]["wall_us"], strict=True)
    ]
    return {
        "backend": args.backend,
        "loop": args.loop,
        "log_level": args.log_level or "default",
        "config_source": "admin-api" if args.admin_url else "static",
        "calls_per_block": args.calls,
        "blocks": args.blocks,
        "raw_wall_us": round(med["raw"]["wall_us"], 1),
        "router_wall_us": round(med["router"]["wall_us"], 1),
        "raw_cpu_us": round(med["raw"]["cpu_us"], 1),
        "router_cpu_us": round(med["router"]["cpu_us"], 1),
        "overhead_wall_us": round(statistics.median(paired_wall), 1),
        "overhead_cpu_us": round(statistics.median(paired_cpu), 1),
        "lean_wall_us": round(med["lean"]["wall_us"], 1),
        "lean_cpu_us": round(med["lean"]["cpu_us"], 1),
        "overhead_vs_lean_wall_us": round(statistics.median(lean_wall), 1),
        "overhead_vs_lean_cpu_us": round(statistics.median(lean_cpu), 1),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.library_bench")
    p.add_argument("--mock-url", required=True)
    p.add_argument("--admin-url", default="")
    p.add_argument("--admin-token", default=None)
    p.add_argument("--model", default="bench-lib")
    p.add_argument("--backend", choices=("openai", "ollama"), default="openai")
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--blocks", type=int, default=7)
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    p.add_argument(
        "--log-level",
        default="",
        help="LOG_LEVEL of the router's logging (default: the settings' default, INFO)",
    )
    p.add_argument("--json-out", default="", help="write the result here instead of stdout")
    args = p.parse_args(argv)
    if args.log_level and not args.admin_url:
        from llm_backends.logs import configure_logging

        configure_logging(args.log_level, json=True, stdlib=False)
    if args.loop == "uvloop":
        import uvloop

        uvloop.install()
    result = json.dumps(asyncio.run(bench(args)))
    if args.json_out:
        with open(args.json_out, "w") as out:
            out.write(result)
    else:
        print(result)


if __name__ == "__main__":
    main()
