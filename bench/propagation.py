"""Propagation of a config change across processes (issue #12): two `llm-backends serve`
processes A and B over one PostgreSQL, and a library router (in this process) following B's
change feed. Each sample PUTs `endpoint_url` through A, then polls B's gateway and the
router until both answer from the new endpoint; p50/p99 from the PUT's sending.

B's TTL is an hour and its version poll a minute: what is measured is LISTEN/NOTIFY (B) and
the change feed (the router), not a timer.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench import procs, report, targets
from bench.targets import Mocks

ADMIN_DSN = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
MODEL = "bench-propagation"


def scenario_propagation(mocks: Mocks, work: Path, samples: int = 30) -> dict[str, Any]:
    """Start A and B on a fresh database, measure `samples` changes, drop the database."""
    cli = targets.llm_backends_cli()
    if cli is None:
        raise RuntimeError("no .venv/bin/llm-backends: run `make install`")
    database = f"bench_propagation_{secrets.token_hex(4)}"
    asyncio.run(_admin_sql(f'CREATE DATABASE "{database}"'))
    base, _, _ = ADMIN_DSN.rpartition("/")
    token = "bench-" + secrets.token_hex(12)
    env: dict[str, str | None] = {
        "DATABASE_URL": f"{base}/{database}",
        "ADMIN_API_TOKEN": token,
        "LLM_ROUTER_CACHE_TTL": "3600",
        "CONFIG_POLL_SECONDS": "60",
        "LOG_LEVEL": "WARNING",
    }
    children: list[procs.Child] = []
    try:
        for name in ("prop-a", "prop-b"):
            port = procs.free_port()
            argv = [str(cli), "serve", "--host", "127.0.0.1", "--port", str(port)]
            child = procs.spawn(name, argv, port=port, cpus=procs.GATEWAY_CPU, env=env,
                                log_dir=work / "logs")  # fmt: skip
            children.append(child)
            procs.wait_http(child, "/ready", 60, ok=lambda s: s == 200)
        a, b = children
        return asyncio.run(_measure(a.url, b.url, token, mocks, samples))
    finally:
        for child in children:
            child.stop()
        asyncio.run(_admin_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


async def _admin_sql(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _measure(a: str, b: str, token: str, mocks: Mocks, samples: int) -> dict[str, Any]:
    from llm_backends import LLMRouter
    from llm_backends.settings import Settings

    auth = {"Authorization": f"Bearer {token}"}
    router = LLMRouter(settings=Settings(
        _env_file=None, admin_api_url=b, admin_api_token=None, llm_router_cache_ttl=3600,
        metrics_report_interval=3600))  # type: ignore[call-arg]  # fmt: skip
    seen_b: list[float] = []
    seen_router: list[float] = []
    texts = {mocks.main.url: report.MOCK_TEXT, mocks.other.url: targets.OTHER_TEXT}
    async with aiohttp.ClientSession() as http:
        config = targets.cfg(MODEL, "openai", mocks.main.url)
        created = await _json(http.post(f"{a}/api/llm-backends", headers=auth, json=config))
        current = mocks.main.url
        await _answered_by(http, b, texts[current])
        await router.resolve(MODEL)
        for _ in range(200):  # the follower has had its first answer
            if router._follower is not None and router._follower.version is not None:
                break
            await asyncio.sleep(0.01)
        for _ in range(samples):
            new = mocks.other.url if current == mocks.main.url else mocks.main.url
            t0 = time.perf_counter()
            await _json(http.put(f"{a}/api/llm-backends/{created['id']}", headers=auth,
                                 json={"endpoint_url": new}))  # fmt: skip

            async def router_sees(url: str = new, t0: float = t0) -> float:
                for _ in range(60_000):  # 0.5 ms apart: 30 s at most
                    if (await router.resolve(MODEL)).endpoint_url == url:
                        break
                    await asyncio.sleep(0.0005)
                return time.perf_counter() - t0

            async def b_sees(url: str = new, t0: float = t0) -> float:
                await _answered_by(http, b, texts[url])
                return time.perf_counter() - t0

            async with asyncio.timeout(30):
                took_b, took_router = await asyncio.gather(b_sees(), router_sees())
            seen_b.append(took_b * 1000)
            seen_router.append(took_router * 1000)
            current = new
    await router.close()
    return {"samples": samples, "process_b_ms": _summary(seen_b),
            "library_router_ms": _summary(seen_router)}  # fmt: skip


async def _answered_by(http: aiohttp.ClientSession, gateway: str, text: str) -> None:
    """Poll the gateway's chat until the mock answering says `text`."""
    body = targets.chat_body(MODEL)
    while True:
        async with http.post(f"{gateway}{targets.CHAT_PATH}", json=body) as response:
            data = await response.json(content_type=None)
        choices = data.get("choices") or [{}]
        if choices[0].get("message", {}).get("content") == text:
            return
        await asyncio.sleep(0.0005)


async def _json(request: Any) -> Any:
    async with request as response:
        if response.status >= 300:
            raise RuntimeError(f"{response.method} {response.url}: {response.status}")
        return await response.json()


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 2), "p99": round(p99, 2),
            "max": round(ordered[-1], 2)}  # fmt: skip
