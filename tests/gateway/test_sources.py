"""The in-process config source and stats sink over the store, and the router over them:
a dead database stops nothing that is cached (stale beats down)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm_backends.gateway.sources import StoreConfigSource, StoreStatsSink
from llm_backends.router.config_source import ConfigSource, ConfigSourceUnavailable
from llm_backends.router.core import LLMRouter
from llm_backends.router.stats import ModelStats, StatsSink
from llm_backends.settings import Settings
from llm_backends.store import backends as store
from llm_backends.store.db import create_engine, session_factory
from tests.fakes.common import FakeServer

MODEL = "phi3:mini"


async def add(sessions: async_sessionmaker[AsyncSession], **fields: Any) -> int:
    values = {"model_name": MODEL, "backend_type": "openai", "endpoint_url": "http://x:1"}
    values.update(fields)
    async with sessions() as session:
        return (await store.create_backend(session, values)).id


class Breakable:
    """A session factory whose database can be made unreachable."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.down = False

    def __call__(self) -> AsyncSession:
        if self.down:
            raise ConnectionRefusedError("database down")
        return self.sessions()


def test_they_implement_the_router_protocols(sessions: async_sessionmaker[AsyncSession]) -> None:
    assert isinstance(StoreConfigSource(sessions, timeout=1), ConfigSource)
    assert isinstance(StoreStatsSink(sessions), StatsSink)


async def test_source_returns_configs_enabled_or_not(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add(sessions, backend_model="served", max_tokens=77, timeout_seconds=9)
    await add(sessions, model_name="off", enabled=False)
    source = StoreConfigSource(sessions, timeout=2)
    config = await source.get(MODEL)
    assert config is not None
    assert (config.backend_type, config.endpoint_url, config.backend_model) == (
        "openai",
        "http://x:1",
        "served",
    )
    assert (config.max_tokens, config.timeout_seconds) == (77, 9.0)
    off = await source.get("off")
    assert off is not None and off.enabled is False
    assert await source.get("missing") is None


async def test_unreachable_store_raises_config_source_unavailable(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}")
    try:
        with pytest.raises(ConfigSourceUnavailable):
            await StoreConfigSource(session_factory(engine), timeout=2).get(MODEL)
    finally:
        await engine.dispose()


async def test_sink_folds_stats_into_the_store(sessions: async_sessionmaker[AsyncSession]) -> None:
    backend_id = await add(sessions)
    await StoreStatsSink(sessions).report(
        [ModelStats(MODEL, requests=4, errors=1, latency_ms_sum=400.0)]
    )
    async with sessions() as session:
        row = await store.get_backend(session, backend_id)
    assert row is not None
    assert (row.total_requests, row.total_errors, row.avg_latency_ms) == (4, 1, 100.0)


@pytest.fixture
async def make_router() -> AsyncIterator[Callable[..., LLMRouter]]:
    routers: list[LLMRouter] = []

    def make(**kwargs: Any) -> LLMRouter:
        settings = Settings(_env_file=None, ollama_url="http://127.0.0.1:9", admin_api_token=None)  # type: ignore[call-arg]
        router = LLMRouter(settings=settings, **kwargs)
        routers.append(router)
        return router

    yield make
    for router in routers:
        await router.close()


async def test_router_keeps_serving_a_cached_model_while_the_store_is_down(
    sessions: async_sessionmaker[AsyncSession],
    fake_openai: FakeServer,
    make_router: Callable[..., LLMRouter],
) -> None:
    await add(sessions, endpoint_url=fake_openai.url)
    breakable = Breakable(sessions)
    router = make_router(
        config_source=StoreConfigSource(breakable, timeout=2),  # type: ignore[arg-type]
        stats_sink=StoreStatsSink(sessions),
    )
    assert (await router.generate_result(MODEL, "hi")).backend == "openai"

    breakable.down = True
    router.invalidate(MODEL)  # as an Admin API write would: the next call re-fetches
    result = await router.generate_result(MODEL, "hi")
    assert result.backend == "openai" and result.endpoint == fake_openai.url


async def test_router_reports_stats_to_the_store(
    sessions: async_sessionmaker[AsyncSession],
    fake_openai: FakeServer,
    make_router: Callable[..., LLMRouter],
) -> None:
    backend_id = await add(sessions, endpoint_url=fake_openai.url)
    router = make_router(
        config_source=StoreConfigSource(sessions, timeout=2), stats_sink=StoreStatsSink(sessions)
    )
    await router.generate_result(MODEL, "hi")
    await router.generate_result(MODEL, "hi")
    assert await router.flush_stats()
    async with sessions() as session:
        row = await store.get_backend(session, backend_id)
    assert row is not None and row.total_requests == 2 and row.total_errors == 0
