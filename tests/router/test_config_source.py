"""Library mode: configs come from the Admin API over HTTP (a fake one on loopback)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from structlog.testing import capture_logs

from llm_backends.router.config_source import ConfigSourceUnavailable, HttpConfigSource
from tests.fakes.common import FakeServer
from tests.router.support import MODEL, FakeAdmin, FakeClock


@pytest.fixture
def admin_router(make_router, fake_admin: FakeAdmin, fake_ollama: FakeServer):
    def make(**settings: object):
        return make_router(
            {"admin_api_url": fake_admin.url, "ollama_url": fake_ollama.url, **settings}
        )

    return make


async def test_config_is_fetched_with_an_encoded_name(
    admin_router, fake_admin: FakeAdmin, fake_openai: FakeServer
) -> None:
    fake_admin.add(MODEL, "mlx", fake_openai.url, max_tokens=100, temperature_default=0.2)
    fake_admin.add("library/llama3", "mlx", fake_openai.url)
    router = admin_router()
    config = await router.resolve(MODEL)
    assert (config.backend_type, config.endpoint_url) == ("mlx", fake_openai.url)
    assert (config.max_tokens, config.temperature_default, config.id) == (100, 0.2, 1)
    await router.resolve("library/llama3")
    assert fake_admin.state.lookups == [
        "/api/llm-backends/model/phi3%3Amini",
        "/api/llm-backends/model/library%2Fllama3",
    ]
    result = await router.generate(MODEL, "hi")
    assert result["backend"] == "mlx"
    assert fake_openai.bodies[-1]["temperature"] == 0.2
    assert len(fake_admin.state.lookups) == 2  # cached


async def test_config_change_applies_after_the_ttl(
    admin_router, fake_admin: FakeAdmin, fake_openai: FakeServer, clock: FakeClock
) -> None:
    fake_admin.add(MODEL, "ollama", "http://127.0.0.1:11434")
    router = admin_router()
    assert (await router.resolve(MODEL)).backend_type == "ollama"
    fake_admin.add(MODEL, "mlx", fake_openai.url)
    clock.advance(59)
    assert (await router.resolve(MODEL)).backend_type == "ollama"
    clock.advance(1)
    assert (await router.resolve(MODEL)).backend_type == "ollama"  # served at once, stale...
    await asyncio.gather(*router._cache._tasks)  # ...while one lookup refreshes it
    assert (await router.resolve(MODEL)).backend_type == "mlx"


async def test_ttl_comes_from_settings_or_argument(
    make_router, fake_admin: FakeAdmin, clock: FakeClock
) -> None:
    fake_admin.add(MODEL, "ollama", "http://127.0.0.1:11434")
    by_setting = make_router({"admin_api_url": fake_admin.url, "llm_router_cache_ttl": 5})
    by_argument = make_router({"admin_api_url": fake_admin.url}, cache_ttl=5)
    for router in (by_setting, by_argument):
        await router.resolve(MODEL)
    clock.advance(5)
    for router in (by_setting, by_argument):
        await router.resolve(MODEL)
        await asyncio.gather(*router._cache._tasks)
    assert len(fake_admin.state.lookups) == 4


async def test_invalidate_refetches(admin_router, fake_admin: FakeAdmin) -> None:
    fake_admin.add(MODEL, "ollama", "http://127.0.0.1:11434")
    router = admin_router()
    await router.resolve(MODEL)
    router.invalidate(MODEL)
    await router.resolve(MODEL)
    router.invalidate()
    await router.resolve(MODEL)
    assert len(fake_admin.state.lookups) == 3


async def test_404_uses_default_ollama(
    admin_router, fake_admin: FakeAdmin, fake_ollama: FakeServer
) -> None:
    fake_admin.add(MODEL, "mlx", "http://127.0.0.1:8080", enabled=False)
    router = admin_router()
    with capture_logs() as logs:
        result = await router.generate(MODEL, "hi")
    assert (result["backend"], result["endpoint"]) == ("ollama", fake_ollama.url)
    assert "no_backend_config_found" in [e["event"] for e in logs]


async def test_unreachable_admin_api_uses_default(
    make_router, refused_url: str, fake_ollama: FakeServer
) -> None:
    router = make_router({"admin_api_url": refused_url, "ollama_url": fake_ollama.url})
    with capture_logs() as logs:
        result = await router.generate(MODEL, "hi")
    assert result["backend"] == "ollama"
    (event,) = [e for e in logs if e["event"] == "failed_to_fetch_backend_config"]
    assert event["serving"] == "default"
    assert refused_url in event["error"]


@pytest.mark.parametrize("failure", ["500", "bad config"])
async def test_failing_admin_api_keeps_the_last_known_config(
    admin_router, fake_admin: FakeAdmin, fake_openai: FakeServer, clock: FakeClock, failure: str
) -> None:
    fake_admin.add(MODEL, "mlx", fake_openai.url)
    router = admin_router()
    await router.resolve(MODEL)
    if failure == "500":
        fake_admin.state.status = 500
    else:
        fake_admin.state.configs[MODEL] = {"model_name": MODEL}  # no backend_type
    clock.advance(61)
    with capture_logs() as logs:
        result = await router.generate(MODEL, "hi")  # the stale config, at once...
        await asyncio.gather(*router._cache._tasks)  # ...while its refresh fails behind it
    assert result["backend"] == "mlx"
    (event,) = [e for e in logs if e["event"] == "failed_to_fetch_backend_config"]
    assert event["serving"] == "stale"


async def test_hung_admin_api_costs_one_fetch_timeout(
    admin_router, fake_admin: FakeAdmin, fake_openai: FakeServer, clock: FakeClock
) -> None:
    fake_admin.add(MODEL, "mlx", fake_openai.url)
    router = admin_router()
    await router.resolve(MODEL)
    fake_admin.state.hang = True
    clock.advance(61)
    assert (await router.generate(MODEL, "hi"))["backend"] == "mlx"  # waited once, stale
    for _ in range(20):
        clock.advance(1)
        assert (await router.generate(MODEL, "hi"))["backend"] == "mlx"
    # 20 s of traffic: a few background retries (one per 5 s), never one per request.
    assert 2 <= len(fake_admin.state.lookups) <= 6


async def test_http_source_directly(fake_admin: FakeAdmin, refused_url: str) -> None:
    fake_admin.add(MODEL, "auto", "http://127.0.0.1:8080", backend_model="m", timeout_seconds=9)
    async with aiohttp.ClientSession() as session:
        source = HttpConfigSource(fake_admin.url + "/", lambda: session, timeout=1)
        config = await source.get(MODEL)
        assert config is not None
        assert (config.backend_type, config.backend_model, config.timeout_seconds) == (
            "auto",
            "m",
            9.0,
        )
        assert await source.get("nope") is None
        fake_admin.state.status = 503
        with pytest.raises(ConfigSourceUnavailable, match="HTTP 503"):
            await source.get(MODEL)
        down = HttpConfigSource(refused_url, lambda: session, timeout=1)
        with pytest.raises(ConfigSourceUnavailable, match=refused_url):
            await down.get(MODEL)
