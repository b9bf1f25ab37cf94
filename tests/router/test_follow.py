"""A library router follows the change feed (a fake Admin API on loopback), and never makes
a request wait on a refresh of a config it has."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from structlog.testing import capture_logs

from llm_backends.router.core import LLMRouter
from tests.fakes.common import FakeServer
from tests.router.support import FakeAdmin, FakeClock


async def until(check: Any, within: float = 5.0) -> None:
    """Poll an async check every 5 ms (bounded): the follower works in the background."""
    for _ in range(int(within / 0.005)):
        if await check():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


def following(make_router: Any, fake_admin: FakeAdmin, fake_ollama: FakeServer) -> LLMRouter:
    return make_router(
        {
            "admin_api_url": fake_admin.url,
            "ollama_url": fake_ollama.url,
            "llm_router_follow_changes": True,
        }
    )


async def on_feed(router: LLMRouter) -> None:
    async def check() -> bool:
        return router._follower is not None and router._follower.version is not None

    await until(check)
    # Its first answer revalidates what was cached before it (lookups behind the requests).
    await asyncio.gather(*router._cache._tasks)


async def following_a_and_b(
    make_router: Any, fake_admin: FakeAdmin, fake_ollama: FakeServer
) -> LLMRouter:
    """A following router that has resolved models a (a1) and b (b1) and is on the feed."""
    fake_admin.add("a", "ollama", fake_ollama.url, backend_model="a1")
    fake_admin.add("b", "ollama", fake_ollama.url, backend_model="b1")
    router = following(make_router, fake_admin, fake_ollama)
    await router.resolve("a")
    await router.resolve("b")
    await on_feed(router)
    return router


async def test_only_the_changed_model_is_looked_up_again(
    make_router: Any, fake_admin: FakeAdmin, fake_ollama: FakeServer
) -> None:
    router = await following_a_and_b(make_router, fake_admin, fake_ollama)
    before = list(fake_admin.state.lookups)
    fake_admin.add("a", "ollama", fake_ollama.url, backend_model="a2")
    fake_admin.state.change("a")

    async def changed() -> bool:
        return (await router.resolve("a")).backend_model == "a2"

    await until(changed)  # the clock stands still: no TTL did this
    assert (await router.resolve("b")).backend_model == "b1"
    new = fake_admin.state.lookups[len(before) :]
    assert new == ["/api/llm-backends/model/a"]


async def test_a_gap_in_the_versions_reloads_every_model(
    make_router: Any, fake_admin: FakeAdmin, fake_ollama: FakeServer
) -> None:
    router = await following_a_and_b(make_router, fake_admin, fake_ollama)
    fake_admin.add("b", "ollama", fake_ollama.url, backend_model="b2")
    fake_admin.state.feed_version += 5  # the log was trimmed: versions are missing
    fake_admin.state.change("a")
    with capture_logs() as logs:

        async def reloaded() -> bool:
            return (await router.resolve("b")).backend_model == "b2"

        await until(reloaded)
    assert "config_changes_reload_all" in [e["event"] for e in logs]


async def test_an_unreachable_feed_falls_back_to_the_ttl_and_is_retried(
    make_router: Any, fake_admin: FakeAdmin, fake_ollama: FakeServer, clock: FakeClock
) -> None:
    fake_admin.add("a", "ollama", fake_ollama.url, backend_model="a1")
    fake_admin.state.feed_status = 503
    router = following(make_router, fake_admin, fake_ollama)
    with capture_logs() as logs:
        await router.resolve("a")

        async def retried() -> bool:
            return len(fake_admin.state.feed_polls) >= 2

        await until(retried)
    warnings = [e for e in logs if e["event"] == "config_change_feed_unreachable"]
    assert len(warnings) == 1  # once per outage, not per retry
    # Meanwhile the TTL still applies a change.
    fake_admin.add("a", "ollama", fake_ollama.url, backend_model="a2")
    clock.advance(61)
    await router.resolve("a")
    await asyncio.gather(*router._cache._tasks)
    assert (await router.resolve("a")).backend_model == "a2"
    # The feed comes back: followed again (backoff from 0.5 s).
    fake_admin.state.feed_status = None
    await on_feed(router)
    fake_admin.add("a", "ollama", fake_ollama.url, backend_model="a3")
    fake_admin.state.change("a")

    async def followed() -> bool:
        return (await router.resolve("a")).backend_model == "a3"

    await until(followed)


async def test_no_request_waits_on_a_refresh_under_load(
    make_router: Any, fake_admin: FakeAdmin, fake_ollama: FakeServer, clock: FakeClock
) -> None:
    """Continuous load while the model's config expires and the Admin API takes 1 s to
    answer: every request is served at once (the old config, then the new one)."""
    fake_admin.add("a", "ollama", fake_ollama.url, backend_model="a1")
    router = make_router(
        {
            "admin_api_url": fake_admin.url,
            "ollama_url": fake_ollama.url,
            "llm_router_fetch_timeout": 5.0,
        }
    )
    await router.generate("a", "hi")
    fake_admin.add("a", "ollama", fake_ollama.url, backend_model="a2")
    fake_admin.state.lookup_delay = 1.0
    clock.advance(61)  # expired
    latencies: list[float] = []
    served: list[str] = []

    async def client() -> None:
        while "a2" not in served[-8:] or len(served) < 40:
            began = time.perf_counter()
            await router.generate("a", "hi")
            latencies.append(time.perf_counter() - began)
            served.append(fake_ollama.bodies[-1]["model"])

    async with asyncio.timeout(20):
        await asyncio.gather(*(client() for _ in range(4)))
    assert served[0] == "a1" and served[-1] == "a2"
    assert len(fake_admin.state.lookups) == 2  # one refresh, however many requests
    # The refresh took a second; no request came near it (a loaded machine: generous).
    assert max(latencies) < 0.5, max(latencies)
