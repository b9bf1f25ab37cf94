"""Which HTTP client should the router use? httpx.AsyncClient vs aiohttp.ClientSession.

Both pooled (one client for all calls), POSTing the same JSON body to the mock backend, on
asyncio's default loop and on uvloop. The client runs pinned to core 0, the mock to core 1.
Reported per call: wall µs at concurrency 1 (latency) and CPU µs of this process at
concurrency 32 (cost, what limits a gateway's throughput on one core). Also: stdlib json vs
orjson on a typical request/response pair.

    python -m bench.httpclient_compare [--calls 2000] [--rounds 3] [--json]

Writes bench/results/httpclient.json, which bench/RESULTS.md quotes on the next `make bench`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import httpx
import orjson
import uvloop

from bench import procs

BODY = {"model": "mock", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
Caller = Callable[[], Awaitable[Any]]


def aiohttp_factory(
    url: str,
) -> tuple[Callable[[], Awaitable[Caller]], Callable[[], Awaitable[None]]]:
    holder: dict[str, aiohttp.ClientSession] = {}
    payload = orjson.dumps(BODY)
    headers = {"Content-Type": "application/json"}

    async def make() -> Caller:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        holder["s"] = session

        async def call() -> Any:
            async with session.post(url, data=payload, headers=headers) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(resp.status)
                return orjson.loads(body)

        return call

    async def close() -> None:
        await holder["s"].close()

    return make, close


def httpx_factory(
    url: str,
) -> tuple[Callable[[], Awaitable[Caller]], Callable[[], Awaitable[None]]]:
    holder: dict[str, httpx.AsyncClient] = {}
    payload = orjson.dumps(BODY)
    headers = {"Content-Type": "application/json"}

    async def make() -> Caller:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        client = httpx.AsyncClient(limits=limits, timeout=30)
        holder["c"] = client

        async def call() -> Any:
            resp = await client.post(url, content=payload, headers=headers)
            if resp.status_code != 200:
                raise RuntimeError(resp.status_code)
            return orjson.loads(resp.content)

        return call

    async def close() -> None:
        await holder["c"].aclose()

    return make, close


FACTORIES = {"aiohttp": aiohttp_factory, "httpx": httpx_factory}


async def measure(factory: Any, url: str, calls: int, concurrency: int) -> dict[str, float]:
    make, close = factory(url)
    call = await make()
    try:
        for _ in range(min(200, calls)):  # warm the pool and code paths
            await call()
        if concurrency == 1:
            wall0, cpu0 = time.perf_counter(), time.process_time()
            for _ in range(calls):
                await call()
        else:
            per_worker = max(1, calls // concurrency)

            async def worker() -> None:
                for _ in range(per_worker):
                    await call()

            await asyncio.gather(*(worker() for _ in range(concurrency)))  # warm c connections
            wall0, cpu0 = time.perf_counter(), time.process_time()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            calls = per_worker * concurrency
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        await close()
    return {"wall_us": wall / calls * 1e6, "cpu_us": cpu / calls * 1e6, "calls_per_s": calls / wall}


def run_case(client: str, loop: str, url: str, calls: int, concurrency: int) -> dict[str, float]:
    policy = uvloop.EventLoopPolicy() if loop == "uvloop" else asyncio.DefaultEventLoopPolicy()
    asyncio.set_event_loop_policy(policy)
    try:
        return asyncio.run(measure(FACTORIES[client], url, calls, concurrency))
    finally:
        asyncio.set_event_loop_policy(None)


def json_micro(n: int = 20000) -> dict[str, float]:
    """µs per encode(request)+decode(response) pair, stdlib json vs orjson."""
    response = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "mock",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello " * 20},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 20, "total_tokens": 21},
    }
    raw = json.dumps(response).encode()
    out = {}
    for name, dumps, loads in (
        ("json", lambda o: json.dumps(o).encode(), json.loads),
        ("orjson", orjson.dumps, orjson.loads),
    ):
        t0 = time.perf_counter()
        for _ in range(n):
            dumps(BODY)
            loads(raw)
        out[name] = (time.perf_counter() - t0) / n * 1e6
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m bench.httpclient_compare")
    p.add_argument("--calls", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", action="store_true", help="print only the JSON result")
    args = p.parse_args(argv)

    procs.pin_self(procs.GATEWAY_CPU)
    mock = procs.start_mock("mock-httpclient", cpus=procs.CLIENT_CPU)
    url = mock.url + "/v1/chat/completions"
    cases = [(c, lp) for c in FACTORIES for lp in ("asyncio", "uvloop")]
    samples: dict[str, dict[str, list[float]]] = {}
    try:
        for _ in range(args.rounds):  # interleaved: every case once per round
            for client, loop in cases:
                for conc in (1, 32):
                    r = run_case(client, loop, url, args.calls, conc)
                    key = f"{client}/{loop}/c{conc}"
                    for metric, value in r.items():
                        samples.setdefault(key, {}).setdefault(metric, []).append(value)
    finally:
        mock.stop()
    result: dict[str, Any] = {
        "cases": {
            key: {m: round(statistics.median(v), 1) for m, v in metrics.items()}
            for key, metrics in samples.items()
        },
        "json_us_per_pair": {k: round(v, 2) for k, v in json_micro().items()},
        "rounds": args.rounds,
        "calls": args.calls,
        "versions": {
            "aiohttp": aiohttp.__version__,
            "httpx": httpx.__version__,
            "uvloop": uvloop.__version__,
            "orjson": orjson.__version__,
        },
    }
    result["generated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    out = procs.BENCH / "results" / "httpclient.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"{'client/loop':<22}{'c=1 wall µs':>13}{'c=1 cpu µs':>12}"
            f"{'c=32 calls/s':>14}{'c=32 cpu µs':>13}"
        )
        for client, loop in cases:
            a, b = result["cases"][f"{client}/{loop}/c1"], result["cases"][f"{client}/{loop}/c32"]
            print(
                f"{client + '/' + loop:<22}{a['wall_us']:>13.1f}{a['cpu_us']:>12.1f}"
                f"{b['calls_per_s']:>14.0f}{b['cpu_us']:>13.1f}"
            )
        js = result["json_us_per_pair"]
        print(f"json encode+decode pair: stdlib {js['json']:.2f} µs, orjson {js['orjson']:.2f} µs")
        sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
