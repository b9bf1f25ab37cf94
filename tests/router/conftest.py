"""Fixtures of the router tests (the test doubles live in support.py).

The fake Ollama/OpenAI servers come from tests/fakes/fixtures.py, through tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from llm_backends.router.core import LLMRouter
from tests.fakes.server import free_port, serve
from tests.router.support import (
    LEAVE_DEFAULT,
    AdminState,
    DictSource,
    FakeAdmin,
    FakeClock,
    RecordingSink,
    admin_app,
    router_settings,
)


@pytest.fixture(scope="session")
def fake_admin_server() -> Iterator[FakeAdmin]:
    state = AdminState()
    with serve(admin_app(state)) as server:
        yield FakeAdmin(server.url, state)


@pytest.fixture
def fake_admin(fake_admin_server: FakeAdmin) -> Iterator[FakeAdmin]:
    fake_admin_server.state.reset()
    yield fake_admin_server
    fake_admin_server.state.reset()


@pytest.fixture
def refused_url() -> str:
    """A loopback URL where nothing listens: connecting is refused at once."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def source() -> DictSource:
    return DictSource()


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
async def make_router(clock: FakeClock) -> AsyncIterator[Any]:
    """`make_router(settings overrides..., **LLMRouter kwargs)`; closed after the test.

    Defaults: the fake clock, no stats sink, settings with nothing reachable.
    """
    routers: list[LLMRouter] = []

    def make(settings: dict[str, Any] | None = None, **kwargs: Any) -> LLMRouter:
        kwargs.setdefault("clock", clock)
        if kwargs.get("stats_sink") is LEAVE_DEFAULT:
            del kwargs["stats_sink"]
        else:
            kwargs.setdefault("stats_sink", None)
        router = LLMRouter(settings=router_settings(**(settings or {})), **kwargs)
        routers.append(router)
        return router

    yield make
    for router in routers:
        await router.close()
