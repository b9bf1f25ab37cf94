"""LLMRouter end to end over real loopback sockets: parameters, results, errors, streams."""

from __future__ import annotations

from contextlib import aclosing

import pytest
from structlog.testing import capture_logs

from llm_backends import (
    BackendRequestError,
    BackendUnavailable,
    LLMRouter,
    LLMRouterError,
    ModelNotFound,
)
from llm_backends.router.types import BackendConfig, Result
from tests.fakes.common import FakeServer
from tests.router.support import MODEL, DictSource, router_settings

RESULT_KEYS = {
    "response",
    "backend",
    "model",
    "done",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "fallback_from",
    "endpoint",
    "finish_reason",
    "tokens_per_sec",
}


async def test_generate_on_ollama(make_router, source: DictSource, fake_ollama: FakeServer) -> None:
    source.add(MODEL, "ollama", fake_ollama.url)
    router = make_router(config_source=source)
    with capture_logs() as logs:
        result = await router.generate(model=MODEL, prompt="What is 2+2?", temperature=0.7)
    assert set(result) >= RESULT_KEYS
    assert result["response"] == "Hello from the fake server."
    assert result["backend"] == "ollama"
    assert result["model"] == MODEL
    assert result["done"] is True
    assert result["fallback_from"] is None
    assert result["endpoint"] == fake_ollama.url
    assert (result["prompt_tokens"], result["completion_tokens"]) == (5, 3)
    assert result["tokens_per_sec"] == pytest.approx(50.0)
    assert result["latency_ms"] > 0
    assert fake_ollama.bodies[-1]["model"] == MODEL
    assert fake_ollama.bodies[-1]["prompt"] == "What is 2+2?"
    # One INFO line per request, written when it ends (the start is at DEBUG).
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("llm_request_started", "debug"),
        ("routing_llm_request", "info"),
    ]
    line = logs[1]
    assert line["backend_type"] == "ollama" and line["backend"] == "ollama"
    assert line["endpoint"] == fake_ollama.url
    assert line["model"] == MODEL and line["stream"] is False and line["fallback_from"] is None
    assert line["tokens_per_sec"] == pytest.approx(50.0)
    assert line["duration_ms"] > 0


async def test_generate_on_mlx_and_openai(
    make_router, source: DictSource, fake_openai: FakeServer
) -> None:
    source.add("on-mlx", "mlx", fake_openai.url)
    source.add("on-openai", "openai", fake_openai.url + "/v1", backend_model="served-name")
    router = make_router(config_source=source)
    mlx = await router.generate("on-mlx", "hi")
    assert (mlx["backend"], mlx["response"]) == ("mlx", "Hello from the fake server.")
    openai = await router.generate("on-openai", "hi")
    assert openai["backend"] == "openai"
    assert fake_openai.bodies[-1]["model"] == "served-name"


async def test_chat(make_router, source: DictSource, fake_ollama: FakeServer) -> None:
    source.add(MODEL, "ollama", fake_ollama.url)
    router = make_router(config_source=source)
    messages = [{"role": "user", "content": "Hi"}]
    result = await router.chat(MODEL, messages, system="Be brief.")
    assert result["response"] == "Hello from the fake server."
    assert fake_ollama.requests[-1].path == "/api/chat"
    assert fake_ollama.bodies[-1]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]


async def test_explicit_zero_temperature_and_max_tokens_are_sent(
    make_router, source: DictSource, fake_ollama: FakeServer
) -> None:
    source.add(MODEL, "ollama", fake_ollama.url, temperature_default=0.9, max_tokens=777)
    router = make_router(config_source=source)
    await router.generate(MODEL, "hi", temperature=0, max_tokens=5, stop="\n")
    options = fake_ollama.bodies[-1]["options"]
    assert (options["temperature"], options["num_predict"], options["stop"]) == (0, 5, ["\n"])
    await router.generate(MODEL, "hi")
    options = fake_ollama.bodies[-1]["options"]
    assert (options["temperature"], options["num_predict"]) == (0.9, 777)
    assert "stop" not in options


async def test_unconfigured_model_uses_default_ollama(
    make_router, source: DictSource, fake_ollama: FakeServer
) -> None:
    router = make_router({"ollama_url": fake_ollama.url}, config_source=source)
    config = await router.resolve("llama3.1:8b")
    assert config == BackendConfig(
        model_name="llama3.1:8b",
        backend_type="ollama",
        endpoint_url=fake_ollama.url,
        max_tokens=2048,
        temperature_default=0.7,
        timeout_seconds=60.0,
    )
    result = await router.generate("llama3.1:8b", "hi")
    assert result["backend"] == "ollama"
    assert fake_ollama.bodies[-1]["model"] == "llama3.1:8b"
    assert fake_ollama.bodies[-1]["options"]["num_predict"] == 2048


async def test_generate_result_is_typed(
    make_router, source: DictSource, fake_ollama: FakeServer
) -> None:
    source.add(MODEL, "ollama", fake_ollama.url)
    router = make_router(config_source=source)
    result = await router.generate_result(MODEL, "hi")
    assert isinstance(result, Result)
    assert result.finish_reason == "stop"
    chat = await router.chat_result(MODEL, [{"role": "user", "content": "x"}])
    assert chat.backend == "ollama"


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(404, ModelNotFound), (400, BackendRequestError), (500, BackendUnavailable)],
)
async def test_errors_are_typed_and_name_model_backend_endpoint(
    make_router,
    source: DictSource,
    fake_ollama: FakeServer,
    status: int,
    error_type: type[LLMRouterError],
) -> None:
    source.add(MODEL, "ollama", fake_ollama.url)
    fake_ollama.fail(status, "model 'phi3:mini' not found")
    router = make_router(config_source=source)
    with capture_logs() as logs, pytest.raises(error_type) as caught:
        await router.generate(MODEL, "hi")
    message = str(caught.value)
    assert MODEL in message and "ollama" in message and fake_ollama.url in message
    assert isinstance(caught.value, LLMRouterError)
    failed = [e for e in logs if e["event"] == "llm_request_failed"]
    assert failed and failed[0]["backend"] == "ollama"
    assert failed[0]["error_type"] == error_type.__name__


async def test_non_health_errors_do_not_open_the_breaker(
    make_router, source: DictSource, fake_ollama: FakeServer
) -> None:
    source.add(MODEL, "ollama", fake_ollama.url)
    fake_ollama.fail(404, "model 'phi3:mini' not found")
    router = make_router(config_source=source)
    for _ in range(5):
        with pytest.raises(ModelNotFound):
            await router.generate(MODEL, "hi")
    assert router.breaker_states() == {fake_ollama.url: "closed"}
    assert len(fake_ollama.bodies) == 5


async def test_open_breaker_on_plain_backend_fails_fast(
    make_router, source: DictSource, fake_ollama: FakeServer, clock
) -> None:
    source.add(MODEL, "ollama", fake_ollama.url)
    fake_ollama.fail(503)
    router = make_router(config_source=source)
    for _ in range(3):
        with pytest.raises(BackendUnavailable):
            await router.generate(MODEL, "hi")
    assert router.breaker_states() == {fake_ollama.url: "open"}
    with pytest.raises(BackendUnavailable, match="circuit open") as caught:
        await router.generate(MODEL, "hi")
    assert caught.value.endpoint == fake_ollama.url
    assert len(fake_ollama.bodies) == 3  # the 4th request never left the process
    fake_ollama.reset()
    clock.advance(30)
    with capture_logs() as logs:
        assert (await router.generate(MODEL, "hi"))["backend"] == "ollama"  # the probe
    assert "backend_circuit_closed" in [e["event"] for e in logs]
    assert router.breaker_states() == {fake_ollama.url: "closed"}


async def test_unknown_backend_type_is_a_router_error(
    make_router, source: DictSource, fake_ollama: FakeServer
) -> None:
    source.add(MODEL, "tgi", fake_ollama.url)
    router = make_router(config_source=source)
    with pytest.raises(LLMRouterError, match="backend_type 'tgi'"):
        await router.generate(MODEL, "hi")


async def test_stream_yields_text(make_router, source: DictSource, fake_ollama: FakeServer) -> None:
    source.add(MODEL, "ollama", fake_ollama.url)
    fake_ollama.configure(reply="one two three", chunks=3)
    router = make_router(config_source=source)
    pieces = [piece async for piece in router.stream(MODEL, "count")]
    assert all(isinstance(piece, str) and piece for piece in pieces)
    assert "".join(pieces) == "one two three"
    assert len(pieces) == 3
    chat_pieces = [
        piece async for piece in router.stream_chat(MODEL, [{"role": "user", "content": "x"}])
    ]
    assert "".join(chat_pieces) == "one two three"


async def test_stream_chunks_tell_backend_and_usage(
    make_router, source: DictSource, fake_openai: FakeServer
) -> None:
    source.add(MODEL, "mlx", fake_openai.url)
    router = make_router(config_source=source)
    stream = router.stream_chunks(MODEL, "hi", max_tokens=0)
    assert stream.backend is None
    first = await anext(stream)
    assert (stream.backend, stream.endpoint, stream.fallback_from) == ("mlx", fake_openai.url, None)
    rest = [chunk async for chunk in stream]
    final = rest[-1]
    assert final.done and final is stream.final
    assert (final.prompt_tokens, final.completion_tokens, final.finish_reason) == (5, 3, "stop")
    assert first.text + "".join(chunk.text for chunk in rest) == "Hello from the fake server."
    assert fake_openai.bodies[-1]["max_tokens"] == 0


async def test_abandoned_stream_releases_the_backend(
    make_router, source: DictSource, fake_ollama: FakeServer
) -> None:
    source.add(MODEL, "ollama", fake_ollama.url)
    fake_ollama.configure(chunks=5, stall=5.0)
    router = make_router(config_source=source)
    async with aclosing(router.stream_chunks(MODEL, "hi")) as stream:
        await anext(stream)
    assert await fake_ollama.aborted_within(5)
    assert router.breaker_states() == {fake_ollama.url: "closed"}


async def test_router_is_an_async_context_manager(
    source: DictSource, fake_ollama: FakeServer
) -> None:
    source.add(MODEL, "ollama", fake_ollama.url)
    async with LLMRouter(settings=router_settings(), config_source=source) as router:
        assert (await router.generate(MODEL, "hi"))["backend"] == "ollama"
    # Closing frees the pool; the router stays usable and opens a new one.
    assert (await router.generate(MODEL, "hi"))["backend"] == "ollama"
    await router.close()
