"""RouteCache: TTL, single-flight, invalidation, stale-on-error and back-off (no sockets)."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from llm_backends.router.cache import RouteCache
from llm_backends.router.config_source import default_config
from llm_backends.router.fallback import Route, plan_route
from llm_backends.router.types import BackendConfig
from tests.router.support import MODEL, DictSource, FakeClock

OLLAMA = "http://ollama.test:11434"
MLX = "http://mlx.test:8080"


def make_cache(source: DictSource, clock: FakeClock, ttl: float = 60.0) -> RouteCache:
    def make_route(config: BackendConfig, is_default: bool) -> Route:
        return plan_route(config, OLLAMA, is_default=is_default)

    def default(model: str) -> BackendConfig:
        return default_config(
            model, ollama_url=OLLAMA, max_tokens=2048, temperature=0.7, timeout_seconds=60
        )

    return RouteCache(
        source,
        make_route=make_route,
        default_config=default,
        ttl=ttl,
        retry_seconds=5.0,
        clock=clock,
    )


async def cached_mlx(source: DictSource, clock: FakeClock) -> RouteCache:
    """A cache that has looked MODEL up once (an mlx config), at the clock's time."""
    source.add(MODEL, "mlx", MLX)
    cache = make_cache(source, clock)
    await cache.get(MODEL)
    return cache


async def fail_a_refresh(cache: RouteCache, source: DictSource, clock: FakeClock) -> None:
    """Take the source down past MODEL's TTL and let the background refresh fail."""
    source.down = True
    clock.advance(61)
    await cache.get(MODEL)
    await asyncio.gather(*cache._tasks)


async def test_hit_within_ttl_does_not_fetch(source: DictSource, clock: FakeClock) -> None:
    source.add(MODEL, "mlx", MLX)
    cache = make_cache(source, clock)
    first = await cache.get(MODEL)
    clock.advance(59)
    second = await cache.get(MODEL)
    assert first is second
    assert first.config.backend_type == "mlx"
    assert source.calls == [MODEL]


async def test_expired_entry_is_served_while_one_fetch_refreshes_it(
    source: DictSource, clock: FakeClock
) -> None:
    cache = await cached_mlx(source, clock)
    source.add(MODEL, "ollama", OLLAMA)
    source.gate = asyncio.Event()  # the refresh hangs until the test opens it
    clock.advance(60)
    # Stale-while-revalidate: every caller gets the old route at once, one fetch starts.
    stale = [await cache.get(MODEL) for _ in range(20)]
    assert all(route.config.backend_type == "mlx" for route in stale)
    assert cache.fresh(MODEL) is stale[0]
    await source.until_calls(2)
    assert source.calls == [MODEL, MODEL]
    source.gate.set()
    await asyncio.gather(*cache._tasks)
    assert (await cache.get(MODEL)).config.backend_type == "ollama"
    assert source.calls == [MODEL, MODEL]


async def test_a_failed_refresh_keeps_serving_the_stale_route(
    source: DictSource, clock: FakeClock
) -> None:
    cache = await cached_mlx(source, clock)
    source.down = True
    clock.advance(60)
    assert (await cache.get(MODEL)).config.backend_type == "mlx"
    await asyncio.gather(*cache._tasks)
    assert (await cache.get(MODEL)).config.backend_type == "mlx"
    assert source.calls == [MODEL, MODEL]  # backing off: not looked up again for 5 s


async def test_invalidated_model_waits_for_the_fetch_started_at_once(
    source: DictSource, clock: FakeClock
) -> None:
    cache = await cached_mlx(source, clock)
    source.add(MODEL, "ollama", OLLAMA)
    source.gate = asyncio.Event()
    cache.invalidate(MODEL)
    await source.until_calls(2)  # fetched without a caller asking
    assert cache.fresh(MODEL) is None  # known changed: the old route is not served
    waiter = asyncio.create_task(cache.get(MODEL))
    source.gate.set()
    assert (await waiter).config.backend_type == "ollama"
    assert source.calls == [MODEL, MODEL]


async def test_revalidate_serves_the_cached_route_while_refreshing(
    source: DictSource, clock: FakeClock
) -> None:
    cache = await cached_mlx(source, clock)
    source.add(MODEL, "ollama", OLLAMA)
    source.gate = asyncio.Event()
    cache.revalidate()
    await source.until_calls(2)
    assert (await cache.get(MODEL)).config.backend_type == "mlx"
    source.gate.set()
    await asyncio.gather(*cache._tasks)
    assert (await cache.get(MODEL)).config.backend_type == "ollama"
    assert source.calls == [MODEL, MODEL]


async def test_fifty_concurrent_first_calls_fetch_once(
    source: DictSource, clock: FakeClock
) -> None:
    source.add(MODEL, "mlx", MLX)
    source.gate = asyncio.Event()
    cache = make_cache(source, clock)
    waiters = [asyncio.create_task(cache.get(MODEL)) for _ in range(50)]
    await source.entered.wait()  # the fetch runs after every waiter has queued behind it
    assert source.calls == [MODEL]
    source.gate.set()
    routes = await asyncio.gather(*waiters)
    assert source.calls == [MODEL]
    assert all(route is routes[0] for route in routes)


async def test_cancelled_caller_does_not_cancel_the_shared_fetch(
    source: DictSource, clock: FakeClock
) -> None:
    source.add(MODEL, "mlx", MLX)
    source.gate = asyncio.Event()
    cache = make_cache(source, clock)
    impatient = asyncio.create_task(cache.get(MODEL))
    patient = asyncio.create_task(cache.get(MODEL))
    await source.entered.wait()
    impatient.cancel()
    source.gate.set()
    assert (await patient).config.backend_type == "mlx"
    assert impatient.cancelled()
    assert source.calls == [MODEL]


async def test_invalidate_one_model(source: DictSource, clock: FakeClock) -> None:
    source.add(MODEL, "mlx", MLX)
    source.add("other", "mlx", MLX)
    cache = make_cache(source, clock)
    await cache.get(MODEL)
    await cache.get("other")
    source.add(MODEL, "ollama", OLLAMA)
    cache.invalidate(MODEL)
    assert (await cache.get(MODEL)).config.backend_type == "ollama"
    await cache.get("other")
    assert source.calls == [MODEL, "other", MODEL]


async def test_invalidate_all(source: DictSource, clock: FakeClock) -> None:
    source.add(MODEL, "mlx", MLX)
    source.add("other", "mlx", MLX)
    cache = make_cache(source, clock)
    await cache.get(MODEL)
    await cache.get("other")
    cache.invalidate()
    await cache.get(MODEL)
    await cache.get("other")
    assert source.calls == [MODEL, "other", MODEL, "other"]


async def test_invalidate_during_fetch_discards_its_answer(
    source: DictSource, clock: FakeClock
) -> None:
    source.add(MODEL, "mlx", MLX)
    source.gate = asyncio.Event()
    cache = make_cache(source, clock)
    before = asyncio.create_task(cache.get(MODEL))
    await source.entered.wait()
    cache.invalidate(MODEL)
    source.gate.set()
    await before
    # The answer started before the invalidation is not cached: the next call fetches.
    await cache.get(MODEL)
    assert source.calls == [MODEL, MODEL]


@pytest.mark.parametrize("disabled", [False, True])
async def test_missing_or_disabled_config_uses_default(
    source: DictSource, clock: FakeClock, disabled: bool
) -> None:
    if disabled:
        source.add(MODEL, "mlx", MLX, enabled=False)
    cache = make_cache(source, clock)
    with capture_logs() as logs:
        route = await cache.get(MODEL)
    assert route.is_default
    assert route.config == BackendConfig(
        model_name=MODEL,
        backend_type="ollama",
        endpoint_url=OLLAMA,
        max_tokens=2048,
        temperature_default=0.7,
        timeout_seconds=60,
    )
    assert [e["event"] for e in logs] == ["no_backend_config_found"]
    assert logs[0]["reason"] == ("disabled" if disabled else "none")
    # Cached like any answer: no second lookup (nor log) within the TTL.
    await cache.get(MODEL)
    assert source.calls == [MODEL]


async def test_source_down_without_known_config_serves_default(
    source: DictSource, clock: FakeClock
) -> None:
    source.down = True
    cache = make_cache(source, clock)
    with capture_logs() as logs:
        route = await cache.get(MODEL)
    assert route.is_default
    assert route.config.endpoint_url == OLLAMA
    assert [e["event"] for e in logs] == ["failed_to_fetch_backend_config"]
    assert logs[0]["serving"] == "default"


async def test_stale_config_beats_a_down_source(source: DictSource, clock: FakeClock) -> None:
    cache = await cached_mlx(source, clock)
    source.down = True
    clock.advance(61)
    with capture_logs() as logs:
        route = await cache.get(MODEL)  # served at once; the refresh fails behind it
        await asyncio.gather(*cache._tasks)
    assert route.config.backend_type == "mlx"
    assert logs[0]["event"] == "failed_to_fetch_backend_config"
    assert logs[0]["serving"] == "stale"


async def test_failed_fetch_backs_off(source: DictSource, clock: FakeClock) -> None:
    cache = await cached_mlx(source, clock)
    await fail_a_refresh(cache, source, clock)
    for _ in range(10):
        clock.advance(0.4)
        await cache.get(MODEL)
    assert source.calls == [MODEL, MODEL]  # 4 s of calls after the failure: no new lookup
    clock.advance(1.1)
    await cache.get(MODEL)  # still stale at once; the retry runs in the background
    await source.until_calls(3)
    assert source.calls == [MODEL, MODEL, MODEL]


async def test_known_down_source_is_not_waited_for(source: DictSource, clock: FakeClock) -> None:
    """After a failure, callers get stale/default at once while one fetch retries behind."""
    cache = await cached_mlx(source, clock)
    await fail_a_refresh(cache, source, clock)  # marks the source down
    clock.advance(6)  # past the back-off: the next call triggers a re-fetch...
    source.gate = asyncio.Event()  # ...that hangs, like a dead Admin API
    route = await cache.get(MODEL)  # ...but is not awaited
    assert route.config.backend_type == "mlx"
    # A model never seen also gets the default at once.
    unseen = await cache.get("never-seen")
    assert unseen.is_default
    await source.until_calls(4)
    assert source.calls == [MODEL, MODEL, MODEL, "never-seen"]
    await cache.close()  # cancels the hung fetches


async def test_background_refresh_updates_the_entry(source: DictSource, clock: FakeClock) -> None:
    cache = await cached_mlx(source, clock)
    await fail_a_refresh(cache, source, clock)
    clock.advance(6)
    source.down = False
    source.add(MODEL, "ollama", OLLAMA)
    source.gate = asyncio.Event()
    assert (await cache.get(MODEL)).config.backend_type == "mlx"  # stale, not waited
    source.gate.set()
    for _ in range(100):  # yield until the background fetch has run (no timing involved)
        await asyncio.sleep(0)
        if cache.peek(MODEL).config.backend_type == "ollama":  # type: ignore[union-attr]
            break
    assert (await cache.get(MODEL)).config.backend_type == "ollama"
    assert source.calls.count(MODEL) == 3


async def test_trailing_slash_of_endpoint_is_dropped(source: DictSource, clock: FakeClock) -> None:
    source.add(MODEL, "mlx", MLX + "/")
    cache = make_cache(source, clock)
    assert (await cache.get(MODEL)).config.endpoint_url == MLX
