"""Several servers for one model: load sharing, weights, failover, recovery (library mode)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from structlog.testing import capture_logs

from llm_backends import BackendTimeout
from llm_backends.router.types import ServerSpec
from tests.fakes.fleet import Trio
from tests.router.support import DictSource, RecordingSink

MODEL = "llama3:8b"


def fleet_config(source: DictSource, urls: list[str], weights=(1, 1, 1), **extra) -> None:  # type: ignore[no-untyped-def]
    source.add(
        MODEL,
        "ollama",
        urls[0],
        weight=weights[0],
        endpoints=tuple(ServerSpec(u, w) for u, w in zip(urls[1:], weights[1:], strict=True)),
        **extra,
    )


async def clients(router, count: int, per_client: int, on_done=None) -> list:  # type: ignore[no-untyped-def]
    """`count` concurrent clients, each sending `per_client` requests; the results."""
    results: list = []

    async def client(n: int) -> None:
        for i in range(per_client):
            result = await router.generate(model=MODEL, prompt=f"client {n} request {i}")
            results.append(result)
            if on_done is not None:
                on_done(len(results))

    await asyncio.gather(*(client(n) for n in range(count)))
    return results


async def test_equal_servers_share_load_within_ten_percent(make_router, source, trio: Trio):  # type: ignore[no-untyped-def]
    for fake in trio.fakes:  # equal servers: the same service time (50 ms per answer)
        fake.configure(delay=0.05)
    fleet_config(source, trio.urls)
    router = make_router(
        {"conversation_affinity": False}, config_source=source, stats_sink=RecordingSink()
    )
    results = await clients(router, 32, 10)
    counts = trio.counts()
    assert sum(counts) == 320
    # The stats rows name the servers too: one row per server, with its own count.
    rows = {row.endpoint: row.requests for row in router.pending_stats()}
    assert rows == dict(zip(trio.urls, counts, strict=True))
    assert all(abs(count - 320 / 3) <= 0.1 * 320 / 3 for count in counts), counts
    # Each result names the server that answered it.
    assert Counter(r["endpoint"] for r in results) == dict(zip(trio.urls, counts, strict=True))


async def test_weights_are_honoured(make_router, source, trio: Trio):  # type: ignore[no-untyped-def]
    fleet_config(source, trio.urls, weights=(1, 1, 2))
    router = make_router({"conversation_affinity": False}, config_source=source)
    for i in range(200):  # one client: every server is idle, weights alone decide
        await router.generate(model=MODEL, prompt=f"q{i}")
    assert trio.counts() == [50, 50, 100]
    await clients(router, 32, 10)  # and under load
    extra = [c - base for c, base in zip(trio.counts(), [50, 50, 100], strict=True)]
    assert extra[2] > 1.5 * max(extra[0], extra[1]), extra


async def test_a_slower_server_gets_less(make_router, source, trio: Trio):  # type: ignore[no-untyped-def]
    trio.fakes[2].configure(delay=0.05)
    fleet_config(source, trio.urls)
    router = make_router({"conversation_affinity": False}, config_source=source)
    await clients(router, 16, 10)
    fast0, fast1, slow = trio.counts()
    assert slow < 0.5 * min(fast0, fast1), (fast0, fast1, slow)


async def test_killing_a_server_under_32_clients_fails_no_request(make_router, source, trio: Trio):  # type: ignore[no-untyped-def]
    fleet_config(source, trio.urls)
    router = make_router({"conversation_affinity": False}, config_source=source)
    killed = False

    def kill_midway(done: int) -> None:
        nonlocal killed
        if done == 200 and not killed:
            killed = True
            trio.proxy.cut()

    results = await clients(router, 32, 20, kill_midway)  # an error would raise here
    assert killed and len(results) == 640
    after = results[232:]  # requests started after the kill
    assert trio.urls[0] not in {r["endpoint"] for r in after[64:]}


async def test_a_hung_server_never_holds_a_request_past_the_deadline(
    make_router, source, trio: Trio
):  # type: ignore[no-untyped-def]
    """Judged by outcomes, not by measured durations: a request held by the hung server
    (60 s) would fail the 10 s bound; one that timed out says it was the 1 s deadline."""
    hung = trio.fakes[1]
    hung.configure(delay=60)  # accepts, never answers
    fleet_config(source, trio.urls, timeout_seconds=1.0)
    router = make_router({"conversation_affinity": False}, config_source=source)
    outcomes: Counter[str] = Counter()

    async def one(i: int) -> None:
        try:
            result = await router.generate(model=MODEL, prompt=f"q{i}")
            outcomes[result["endpoint"]] += 1
        except BackendTimeout as error:
            assert "no answer within timeout_seconds=1 " in str(error), error
            outcomes["timeout"] += 1

    async with asyncio.timeout(10):
        await asyncio.gather(*(one(i) for i in range(30)))
    assert outcomes[trio.urls[1]] == 0 and sum(outcomes.values()) == 30
    # 30 requests started at once, before anything was known: the hung server's share
    # timed out at the deadline, and each timeout counted against its breaker, now open.
    timeouts = outcomes["timeout"]
    assert router.breaker_states()[trio.urls[1]] == "open"
    reached_hung = len(hung.bodies)
    async with asyncio.timeout(10):
        for i in range(30, 40):
            await one(i)
    assert outcomes["timeout"] == timeouts, outcomes
    assert len(hung.bodies) == reached_hung  # the open breaker keeps requests off it


async def test_an_always_500_server_stops_getting_traffic(make_router, source, trio: Trio):  # type: ignore[no-untyped-def]
    trio.fakes[0].fail(500, "CUDA error: out of memory")
    fleet_config(source, trio.urls)
    router = make_router(
        {"conversation_affinity": False}, config_source=source, stats_sink=RecordingSink()
    )
    with capture_logs() as logs:
        results = [await router.generate(model=MODEL, prompt=f"q{i}") for i in range(60)]
    assert all(r["endpoint"] != trio.urls[0] for r in results)
    assert len(trio.fakes[0].bodies) == 3  # the breaker's threshold, then no more retries
    retried = [e for e in logs if e["event"] == "fleet_server_failed_trying_next"]
    assert len(retried) == 3 and all(e["endpoint"] == trio.urls[0] for e in retried)
    # The log line of a retried request names the server that answered, not the one that failed.
    lines = [e for e in logs if e["event"] == "routing_llm_request"]
    assert len(lines) == 60 and all(e["endpoint"] != trio.urls[0] for e in lines)
    rows = router.pending_stats()
    assert {row.endpoint for row in rows} == set(trio.urls[1:])
    assert sum(row.requests for row in rows) == 60 and not any(row.errors for row in rows)


async def test_a_dead_server_is_skipped_by_probes_and_used_again_when_back(  # type: ignore[no-untyped-def]
    make_router, source, trio: Trio
):
    fleet_config(source, trio.urls)
    router = make_router(
        {"conversation_affinity": False, "health_check_interval": 0.05}, config_source=source
    )
    await router.generate(model=MODEL, prompt="warm up")  # builds the route, starts probing
    monitor = router.fleet.monitor
    trio.proxy.cut()
    await monitor.next_round()
    assert monitor.servers[trio.urls[0]].healthy is False
    before = trio.counts()[0]
    with capture_logs() as logs:
        await clients(router, 8, 5)
    assert trio.counts()[0] == before  # skipped: no request paid a refused connect
    assert not [e for e in logs if e["event"] == "fleet_server_failed_trying_next"]
    trio.proxy.restore()
    await monitor.next_round()
    assert monitor.servers[trio.urls[0]].healthy is True
    await clients(router, 8, 5)
    assert trio.counts()[0] > before


@pytest.mark.parametrize("chat", [False, True])
async def test_streams_retry_before_the_first_byte_and_name_the_server(  # type: ignore[no-untyped-def]
    make_router, source, trio: Trio, chat: bool
):
    trio.proxy.cut()  # not yet known to the probes: the request pays the refused connect
    fleet_config(source, trio.urls)
    router = make_router({"conversation_affinity": False}, config_source=source)
    for i in range(4):
        if chat:
            routed = router.stream_chat_chunks(MODEL, [{"role": "user", "content": f"q{i}"}])
        else:
            routed = router.stream_chunks(MODEL, f"q{i}")
        text = "".join([chunk.text async for chunk in routed])
        assert text == "Hello from the fake server."
        assert routed.endpoint in trio.urls[1:]
    assert sum(trio.counts()[1:]) == 4
