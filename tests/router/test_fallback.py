"""`auto`: MLX first, Ollama on MLX failure, over real loopback sockets.

The fake OpenAI server plays mlx_lm.server; its faults are the MLX failure kinds.
"""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from llm_backends import (
    BackendRequestError,
    BackendTimeout,
    BackendUnavailable,
    InvalidBackendResponse,
    LLMRouterError,
    ModelNotFound,
    StreamInterrupted,
)
from tests.fakes.common import FakeServer
from tests.router.support import MODEL, DictSource, FakeClock

MLX_NAME = "mlx-community/Phi-3-mini-4k-instruct-4bit"


@pytest.fixture
def auto_router(make_router, source: DictSource, fake_openai: FakeServer, fake_ollama: FakeServer):
    """A router whose MODEL is `auto` with MLX on the fake OpenAI server."""

    def make(mlx_url: str | None = None, **settings: Any):
        source.add(
            MODEL,
            "auto",
            mlx_url or fake_openai.url,
            backend_model=MLX_NAME,
            timeout_seconds=0.5,
        )
        return make_router({"ollama_url": fake_ollama.url, **settings}, config_source=source)

    return make


def fallback_events(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "mlx_failed_falling_back_to_ollama"]


async def test_healthy_mlx_answers(
    auto_router, fake_openai: FakeServer, fake_ollama: FakeServer
) -> None:
    router = auto_router()
    result = await router.generate(MODEL, "hi")
    assert (result["backend"], result["fallback_from"]) == ("mlx", None)
    assert result["endpoint"] == fake_openai.url
    assert fake_openai.requests[-1].path == "/v1/completions"
    assert fake_openai.bodies[-1]["model"] == MLX_NAME
    assert fake_ollama.bodies == []


MLX_FAULTS: dict[str, tuple[dict[str, Any], type[LLMRouterError]]] = {
    "500": ({"status": 500}, BackendUnavailable),
    "404": ({"status": 404}, ModelNotFound),
    "garbage": ({"garbage": True}, InvalidBackendResponse),
    "hung": ({"delay": 10.0}, BackendTimeout),
}


@pytest.mark.parametrize("fault", [*MLX_FAULTS, "refused"])
async def test_mlx_failure_falls_back_to_ollama(
    auto_router,
    fake_openai: FakeServer,
    fake_ollama: FakeServer,
    refused_url: str,
    fault: str,
) -> None:
    if fault == "refused":
        router, error_type = auto_router(refused_url), BackendUnavailable
    else:
        changes, error_type = MLX_FAULTS[fault]
        fake_openai.configure(**changes)
        router = auto_router()
    with capture_logs() as logs:
        result = await router.generate(MODEL, "hi", temperature=0)
    assert result["backend"] == "ollama"
    assert result["fallback_from"] == "mlx"
    assert result["endpoint"] == fake_ollama.url
    assert result["response"] == "Hello from the fake server."
    # Ollama is asked with the model's own name, not the MLX server's name for it.
    assert fake_ollama.bodies[-1]["model"] == MODEL
    assert fake_ollama.bodies[-1]["options"]["temperature"] == 0
    (event,) = fallback_events(logs)
    assert event["model"] == MODEL
    assert event["error_type"] == error_type.__name__
    assert "mlx" in event["error"]


async def test_bad_request_does_not_fall_back(
    auto_router, fake_openai: FakeServer, fake_ollama: FakeServer
) -> None:
    fake_openai.fail(400, "max_tokens must be positive")
    router = auto_router()
    with pytest.raises(BackendRequestError, match="max_tokens must be positive"):
        await router.generate(MODEL, "hi")
    assert fake_ollama.bodies == []


async def test_both_down_raises_one_error_naming_both(
    make_router, source: DictSource, refused_url: str
) -> None:
    mlx_url = refused_url
    ollama_url = refused_url.replace("127.0.0.1", "localhost")
    source.add(MODEL, "auto", mlx_url)
    router = make_router({"ollama_url": ollama_url}, config_source=source)
    with capture_logs() as logs, pytest.raises(BackendUnavailable) as caught:
        await router.generate(MODEL, "hi")
    error = caught.value
    assert (error.backend, error.endpoint, error.model) == ("ollama", ollama_url, MODEL)
    assert error.fallback_from == "mlx"  # type: ignore[attr-defined]
    message = str(error)
    assert "mlx" in message and mlx_url in message and ollama_url in message
    assert [e["event"] for e in logs][-2:] == [
        "mlx_failed_falling_back_to_ollama",
        "llm_request_failed",
    ]


async def test_ollama_error_after_fallback_keeps_its_type(
    auto_router, fake_openai: FakeServer, fake_ollama: FakeServer
) -> None:
    fake_openai.fail(503)
    fake_ollama.fail(404, f"model '{MODEL}' not found")
    router = auto_router()
    with pytest.raises(ModelNotFound, match="not found") as caught:
        await router.generate(MODEL, "hi")
    assert caught.value.backend == "ollama"
    assert "HTTP 503" in str(caught.value)  # the MLX failure is named too


async def test_open_mlx_breaker_skips_mlx(
    auto_router, fake_openai: FakeServer, fake_ollama: FakeServer, clock: FakeClock
) -> None:
    fake_openai.fail(500)
    router = auto_router()
    with capture_logs() as logs:
        for _ in range(6):
            result = await router.generate(MODEL, "hi")
            assert (result["backend"], result["fallback_from"]) == ("ollama", "mlx")
    assert len(fake_openai.bodies) == 3  # requests 4-6 went straight to Ollama
    assert len(fake_ollama.bodies) == 6
    assert [e["event"] for e in logs].count("backend_circuit_opened") == 1
    assert len(fallback_events(logs)) == 3
    assert router.breaker_states() == {fake_openai.url: "open", fake_ollama.url: "closed"}

    # After the cooldown one probe goes to MLX; it is healthy again, so MLX answers.
    fake_openai.reset()
    clock.advance(30)
    assert router.breaker_states()[fake_openai.url] == "half_open"
    with capture_logs() as logs:
        result = await router.generate(MODEL, "hi")
    assert (result["backend"], result["fallback_from"]) == ("mlx", None)
    assert "backend_circuit_closed" in [e["event"] for e in logs]
    assert router.breaker_states()[fake_openai.url] == "closed"


async def test_hung_mlx_costs_one_timeout(
    auto_router, fake_openai: FakeServer, fake_ollama: FakeServer
) -> None:
    fake_openai.configure(delay=10.0)
    router = auto_router(breaker_failure_threshold=1)
    for _ in range(4):
        assert (await router.generate(MODEL, "hi"))["backend"] == "ollama"
    assert len(fake_openai.bodies) == 1
    assert await fake_openai.aborted_within(5)  # the router hung up after its timeout


async def test_mlx_404_does_not_open_the_breaker(
    auto_router, fake_openai: FakeServer, fake_ollama: FakeServer
) -> None:
    fake_openai.fail(404)
    router = auto_router()
    for _ in range(5):
        assert (await router.generate(MODEL, "hi"))["backend"] == "ollama"
    assert len(fake_openai.bodies) == 5
    assert router.breaker_states()[fake_openai.url] == "closed"


# -- streaming ------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["500", "garbage", "hung", "refused"])
async def test_stream_falls_back_before_the_first_chunk(
    auto_router,
    fake_openai: FakeServer,
    fake_ollama: FakeServer,
    refused_url: str,
    fault: str,
) -> None:
    if fault == "refused":
        router = auto_router(refused_url)
    else:
        fake_openai.configure(**MLX_FAULTS[fault][0])
        router = auto_router()
    with capture_logs() as logs:
        stream = router.stream_chunks(MODEL, "hi")
        chunks = [chunk async for chunk in stream]
    assert (stream.backend, stream.fallback_from) == ("ollama", "mlx")
    assert stream.endpoint == fake_ollama.url
    assert "".join(chunk.text for chunk in chunks) == "Hello from the fake server."
    assert chunks[-1].done and chunks[-1].completion_tokens == 3
    assert len(fallback_events(logs)) == 1


async def test_text_stream_falls_back_too(
    auto_router, fake_openai: FakeServer, fake_ollama: FakeServer
) -> None:
    fake_openai.fail(502)
    router = auto_router()
    text = "".join(
        [piece async for piece in router.stream_chat(MODEL, [{"role": "user", "content": "x"}])]
    )
    assert text == "Hello from the fake server."
    assert fake_ollama.requests[-1].path == "/api/chat"


@pytest.mark.parametrize("fault", ["drop_after", "error_after"])
async def test_stream_failure_after_first_chunk_is_interrupted(
    auto_router, fake_openai: FakeServer, fake_ollama: FakeServer, fault: str
) -> None:
    fake_openai.configure(**{fault: 1})
    router = auto_router()
    received: list[str] = []
    with capture_logs() as logs, pytest.raises(StreamInterrupted) as caught:
        async for piece in router.stream(MODEL, "hi"):
            received.append(piece)
    assert len(received) == 1
    error = caught.value
    assert (error.backend, error.endpoint, error.model) == ("mlx", fake_openai.url, MODEL)
    assert isinstance(error.__cause__, LLMRouterError)
    assert fake_ollama.bodies == []  # no fallback once text reached the caller
    assert fallback_events(logs) == []
    assert "llm_request_failed" in [e["event"] for e in logs]


async def test_stream_skips_mlx_while_its_breaker_is_open(
    auto_router, fake_openai: FakeServer, fake_ollama: FakeServer
) -> None:
    fake_openai.fail(500)
    router = auto_router(breaker_failure_threshold=1)
    await router.generate(MODEL, "hi")
    stream = router.stream_chunks(MODEL, "hi")
    assert [chunk async for chunk in stream][-1].done
    assert (stream.backend, stream.fallback_from) == ("ollama", "mlx")
    assert len(fake_openai.bodies) == 1
