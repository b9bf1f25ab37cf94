"""`max_backend_response_bytes`: a backend can't make the router hold an unbounded answer.

The limit applies to a whole body and to each line/event of a stream (a long stream of small
events is a long answer, not an attack); error bodies are read only as far as a message needs.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

import pytest

from llm_backends.router.core import LLMRouter
from llm_backends.router.errors import (
    BackendUnavailable,
    InvalidBackendResponse,
    LLMRouterError,
)
from llm_backends.settings import Settings
from tests.fakes.common import FakeServer
from tests.fakes.raw_tcp import raw_server
from tests.reliability.backend_faults.conftest import ROUTER_SETTINGS
from tests.reliability.backend_faults.support import LIMIT, MESSAGES, TIMEOUT, bounded
from tests.router.support import DictSource, router_settings

kinds = pytest.mark.parametrize("kind", ["ollama", "openai"])


@pytest.fixture
async def make_router() -> Any:
    routers: list[LLMRouter] = []

    def make(kind: str, url: str) -> LLMRouter:
        source = DictSource()
        source.add("m", kind, url, timeout_seconds=TIMEOUT)
        router = LLMRouter(
            settings=router_settings(**ROUTER_SETTINGS), config_source=source, stats_sink=None
        )
        routers.append(router)
        return router

    yield make
    for router in routers:
        await router.close()


def test_the_default_limit_is_32_mib_and_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings(_env_file=None).max_backend_response_bytes == 32 * 1024 * 1024  # type: ignore[call-arg]
    monkeypatch.setenv("MAX_BACKEND_RESPONSE_BYTES", "1048576")
    assert Settings(_env_file=None).max_backend_response_bytes == 1048576  # type: ignore[call-arg]
    monkeypatch.setenv("MAX_BACKEND_RESPONSE_BYTES", "10")
    with pytest.raises(ValueError, match="max_backend_response_bytes"):
        Settings(_env_file=None)  # type: ignore[call-arg]


@kinds
async def test_a_body_just_under_the_limit_is_accepted(
    kind: str, make_router: Any, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    fake = fake_ollama if kind == "ollama" else fake_openai
    fake.configure(huge=LIMIT - 1024)  # the JSON around the text stays under 1 KiB
    router = make_router(kind, fake.url)
    async with bounded("an answer under the limit"):
        result = await router.generate("m", "hi")
    assert len(result["response"]) == LIMIT - 1024


@kinds
async def test_the_limit_is_per_stream_line_not_per_stream(
    kind: str, make_router: Any, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    fake = fake_ollama if kind == "ollama" else fake_openai
    fake.configure(reply="x" * (4 * LIMIT), chunks=64)  # 4 limits in all, 4 KiB per line
    router = make_router(kind, fake.url)
    async with bounded("a long stream"), aclosing(router.stream_chat("m", MESSAGES)) as stream:
        text = "".join([piece async for piece in stream])
    assert text == "x" * (4 * LIMIT)


async def test_a_declared_length_over_the_limit_fails_before_reading(make_router: Any) -> None:
    # The server announces a terabyte and sends one byte: reading would wait for the rest
    # and time out; refusing on the header fails at once, as an invalid response.
    with raw_server("declared_huge") as server:
        router = make_router("ollama", server.url)
        async with bounded("a declared terabyte"):
            with pytest.raises(InvalidBackendResponse) as raised:
                await router.generate("m", "hi")
    assert f"response body larger than {LIMIT} bytes" in raw_reason(raised.value)


@kinds
async def test_a_huge_error_body_is_read_only_as_far_as_its_message(
    kind: str, make_router: Any, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    fake = fake_ollama if kind == "ollama" else fake_openai
    fake.configure(status=500, error="GPU on fire", huge=128 * LIMIT)  # 8 MiB
    router = make_router(kind, fake.url)
    async with bounded("a huge error"):
        with pytest.raises(BackendUnavailable) as raised:
            await router.generate("m", "hi")
    assert raw_reason(raised.value).startswith("HTTP 500: ")
    assert len(str(raised.value)) < 1000
    assert await fake.aborted_within(5), "the router read the whole error body"


@kinds
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "in_band"])
async def test_a_long_backend_message_is_shortened(
    kind: str, stream: bool, make_router: Any, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    # 20 000 characters: under every size limit, but no log line or client needs them all.
    fake = fake_ollama if kind == "ollama" else fake_openai
    if stream:
        fake.configure(error="E" * 20_000, error_after=1)
    else:
        fake.configure(error="E" * 20_000, status=500)
    router = make_router(kind, fake.url)
    async with bounded("a long error message"):
        with pytest.raises(LLMRouterError) as raised:
            if stream:
                async with aclosing(router.stream_chat("m", MESSAGES)) as chunks:
                    async for _ in chunks:
                        pass
            else:
                await router.generate("m", "hi")
    assert "EEEE... (19000 more characters)" in raw_reason(raised.value)
    assert len(str(raised.value)) < 1200


def raw_reason(error: Any) -> str:
    return str(error.reason)
