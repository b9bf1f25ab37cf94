"""Fleet scenarios of `make bench` (issue #11), in one process with in-process mock Ollamas.

- failover: three equal servers, 32 clients through the library router; one server is
  killed mid-run. Reported: failed client requests, and how long throughput (100 ms bins)
  takes to get back to 90 % of its median before the kill.
- affinity: three servers whose answers are fast (5 ms) for a conversation whose leading
  message they have seen and slow (50 ms) otherwise, as a prefix cache makes them; the same
  multi-turn conversations run with conversation affinity on, then off.

Run alone: `python -m bench.fleet_bench [--quick]` (prints JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from llm_backends.router.config_source import ConfigSource
from llm_backends.router.core import LLMRouter
from llm_backends.router.types import BackendConfig, ServerSpec
from llm_backends.settings import Settings

MODEL = "bench-fleet"
BIN_S = 0.1
FAST_S, SLOW_S = 0.005, 0.050


class StaticSource(ConfigSource):
    def __init__(self, config: BackendConfig) -> None:
        self.config = config

    async def get(self, model_name: str) -> BackendConfig | None:
        return self.config if model_name == self.config.model_name else None


def _answer(body: dict[str, Any]) -> dict[str, Any]:
    chat = "messages" in body
    out: dict[str, Any] = {
        "model": body.get("model"),
        "created_at": "2026-11-29T00:00:00Z",
        "done": True,
        "done_reason": "stop",
        "prompt_eval_count": 5,
        "eval_count": 3,
        "eval_duration": 60_000_000,
    }
    if chat:
        out["message"] = {"role": "assistant", "content": "ok"}
    else:
        out["response"] = "ok"
    return out


class Mock:
    """A mock Ollama on loopback; with `cache`, it answers seen conversations faster."""

    def __init__(self, cache: bool = False) -> None:
        self.cache = cache
        self.seen: set[str] = set()
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.cache:
            messages = body.get("messages") or [{"content": body.get("prompt", "")}]
            key = str(messages[0].get("content"))
            await asyncio.sleep(FAST_S if key in self.seen else SLOW_S)
            self.seen.add(key)
        return web.json_response(_answer(body))

    async def tags(self, request: web.Request) -> web.Response:
        return web.json_response({"models": [{"name": MODEL}]})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/generate", self.handle)
        app.router.add_post("/api/chat", self.handle)
        app.router.add_get("/api/tags", self.tags)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    async def kill(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def _router(urls: list[str], affinity: bool) -> LLMRouter:
    config = BackendConfig(
        MODEL,
        "ollama",
        urls[0],
        timeout_seconds=10,
        endpoints=tuple(ServerSpec(url) for url in urls[1:]),
    )
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        conversation_affinity=affinity,
        ollama_url=urls[0],
        log_level="WARNING",
    )
    return LLMRouter(settings=settings, config_source=StaticSource(config), stats_sink=None)


async def _clients(
    count: int, until: float, call: Callable[[int, int], Awaitable[object]]
) -> tuple[list[float], int]:
    """`count` clients calling until `until`; completion times and failures."""
    done: list[float] = []
    failed = 0

    async def client(n: int) -> None:
        nonlocal failed
        i = 0
        while time.perf_counter() < until:
            try:
                await call(n, i)
                done.append(time.perf_counter())
            except Exception:
                failed += 1
            i += 1

    await asyncio.gather(*(client(n) for n in range(count)))
    return done, failed


async def failover(duration: float = 4.0, kill_at: float = 1.5) -> dict[str, Any]:
    mocks = [Mock() for _ in range(3)]
    for mock in mocks:
        await mock.start()
    router = _router([m.url for m in mocks], affinity=False)
    start = time.perf_counter()

    async def killer() -> float:
        await asyncio.sleep(kill_at)
        killed = time.perf_counter()
        await mocks[0].kill()
        return killed

    kill_task = asyncio.create_task(killer())
    done, failed = await _clients(
        32, start + duration, lambda n, i: router.generate(model=MODEL, prompt=f"{n}/{i}")
    )
    killed = await kill_task
    await router.close()
    for mock in mocks[1:]:
        await mock.kill()
    bins = [0] * (int(duration / BIN_S) + 1)
    for t in done:
        bins[min(int((t - start) / BIN_S), len(bins) - 1)] += 1
    kill_bin = int((killed - start) / BIN_S)
    before = statistics.median(bins[2:kill_bin]) if kill_bin > 3 else max(bins[:kill_bin] or [0])
    recovered_bin = next(
        (b for b in range(kill_bin, len(bins) - 1) if bins[b] >= 0.9 * before), None
    )
    after = bins[kill_bin + 1 : -1]
    return {
        "clients": 32,
        "requests": len(done),
        "failed_requests": failed,
        "req_per_s_before_kill": round(before / BIN_S),
        "req_per_s_after_kill": round(statistics.median(after) / BIN_S) if after else None,
        "recovery_ms": None
        if recovered_bin is None
        else round(max(0.0, (recovered_bin + 1) * BIN_S - (killed - start)) * 1000),
    }


async def affinity(conversations: int = 60, turns: int = 6, clients: int = 12) -> dict[str, Any]:
    """The same conversations (and think times) with affinity off, then on."""
    return {
        "off" if not mode else "on": await _conversations(mode, conversations, turns, clients)
        for mode in (False, True)
    }


async def _conversations(mode: bool, conversations: int, turns: int, clients: int) -> dict:
    mocks = [Mock(cache=True) for _ in range(3)]
    for mock in mocks:
        await mock.start()
    router = _router([m.url for m in mocks], affinity=mode)
    latencies: list[float] = []
    rng = random.Random(11)  # the same think times for both modes
    thinks = [[rng.uniform(0, 0.05) for _ in range(turns)] for _ in range(conversations)]
    slots = asyncio.Semaphore(clients)

    async def conversation(c: int) -> None:
        """Turns separated by the user's think time, so conversations interleave."""
        messages = [{"role": "user", "content": f"conversation {c}: a long shared prefix"}]
        for turn in range(turns):
            await asyncio.sleep(thinks[c][turn])
            async with slots:
                started = time.perf_counter()
                result = await router.chat(model=MODEL, messages=messages)
                latencies.append(time.perf_counter() - started)
            messages = [
                *messages,
                {"role": "assistant", "content": result["response"]},
                {"role": "user", "content": f"turn {turn}"},
            ]

    started = time.perf_counter()
    await asyncio.gather(*(conversation(c) for c in range(conversations)))
    elapsed = time.perf_counter() - started
    await router.close()
    for mock in mocks:
        await mock.kill()
    latencies.sort()
    return {
        "requests": len(latencies),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
        "req_per_s": round(len(latencies) / elapsed),
        # A conversation's first request at a server is a miss (the slow path).
        "cache_misses": sum(len(m.seen) for m in mocks),
        "conversations": conversations,
    }


def scenario_fleet(quick: bool = False) -> dict[str, Any]:
    """Both fleet scenarios; what bench/run.py records under "fleet"."""
    # The retries after the kill log a warning each: not what this scenario measures.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))

    async def both() -> dict[str, Any]:
        return {
            "failover": await failover(duration=3.0 if quick else 4.0),
            "affinity": await affinity(conversations=30 if quick else 60),
        }

    return asyncio.run(both())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    print(json.dumps(scenario_fleet(parser.parse_args().quick), indent=2))
