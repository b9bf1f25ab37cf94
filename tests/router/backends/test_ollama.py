"""OllamaBackend against the fake Ollama: request shape, answer mapping, every failure."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest

from llm_backends.router.backends.ollama import OllamaBackend
from llm_backends.router.errors import (
    BackendRequestError,
    BackendTimeout,
    BackendUnavailable,
    InvalidBackendResponse,
    LLMRouterError,
    ModelNotFound,
)
from llm_backends.router.transport import HttpPool
from llm_backends.router.types import CompletionRequest
from tests.fakes.common import FakeServer
from tests.fakes.fake_ollama import OllamaBehaviour
from tests.fakes.server import free_port
from tests.router.backends.helpers import collect, make_config, text_of

Fake = FakeServer[OllamaBehaviour]

PROMPT = CompletionRequest(prompt="Why is the sky blue?", temperature=0.2, max_tokens=64)
CHAT = CompletionRequest(
    messages=[{"role": "user", "content": "Hi"}], temperature=0.2, max_tokens=64
)


@pytest.fixture
def backend(client: HttpPool) -> OllamaBackend:
    return OllamaBackend(client, connect_timeout=2.0)


async def test_generate_sends_ollama_request(backend: OllamaBackend, fake_ollama: Fake) -> None:
    request = CompletionRequest(
        prompt="Why?", system="Be brief.", temperature=0.3, max_tokens=12, stop=["\n"]
    )
    await backend.complete(make_config(fake_ollama.url, "ollama"), request)

    [sent] = fake_ollama.requests
    assert sent.path == "/api/generate"
    assert sent.body == {
        "model": "phi3:mini",
        "prompt": "Why?",
        "system": "Be brief.",
        "stream": False,
        "options": {"temperature": 0.3, "num_predict": 12, "stop": ["\n"]},
    }


async def test_generate_maps_the_answer(backend: OllamaBackend, fake_ollama: Fake) -> None:
    fake_ollama.configure(reply="Rayleigh scattering.", chunks=4, prompt_tokens=9)

    result = await backend.complete(make_config(fake_ollama.url, "ollama"), PROMPT)

    assert result.text == "Rayleigh scattering."
    assert result.finish_reason == "stop"
    assert result.prompt_tokens == 9
    assert result.completion_tokens == 4
    # 4 tokens, eval_duration 4 * 20 ms: the backend's own 50 tokens/s.
    assert result.tokens_per_sec == pytest.approx(50.0)
    assert result.backend_model == "phi3:mini"


async def test_no_system_field_without_system(backend: OllamaBackend, fake_ollama: Fake) -> None:
    await backend.complete(make_config(fake_ollama.url, "ollama"), PROMPT)

    assert "system" not in fake_ollama.bodies[0]
    assert "stop" not in fake_ollama.bodies[0]["options"]


async def test_temperature_zero_is_sent_as_zero(backend: OllamaBackend, fake_ollama: Fake) -> None:
    request = CompletionRequest(prompt="x", temperature=0.0, max_tokens=5)

    await backend.complete(make_config(fake_ollama.url, "ollama"), request)

    options = fake_ollama.bodies[0]["options"]
    assert options["temperature"] == 0
    assert options["num_predict"] == 5


async def test_backend_model_overrides_model_name(
    backend: OllamaBackend, fake_ollama: Fake
) -> None:
    config = make_config(fake_ollama.url, "ollama", backend_model="phi3:3.8b-mini-q4")

    result = await backend.complete(config, PROMPT)

    assert fake_ollama.bodies[0]["model"] == "phi3:3.8b-mini-q4"
    assert result.backend_model == "phi3:3.8b-mini-q4"


async def test_chat_prepends_system_message(backend: OllamaBackend, fake_ollama: Fake) -> None:
    fake_ollama.configure(reply="Hello!")
    request = CompletionRequest(
        messages=[{"role": "user", "content": "Hi"}], system="Be kind.", max_tokens=8
    )

    result = await backend.complete(make_config(fake_ollama.url, "ollama"), request)

    assert result.text == "Hello!"
    [sent] = fake_ollama.requests
    assert sent.path == "/api/chat"
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hi"},
    ]
    assert "prompt" not in sent.body
    assert sent.body["stream"] is False


async def test_length_done_reason(backend: OllamaBackend, fake_ollama: Fake) -> None:
    fake_ollama.configure(finish_reason="length")

    result = await backend.complete(make_config(fake_ollama.url, "ollama"), PROMPT)

    assert result.finish_reason == "length"


async def test_trailing_slash_endpoint(backend: OllamaBackend, fake_ollama: Fake) -> None:
    await backend.complete(make_config(fake_ollama.url + "/", "ollama"), PROMPT)

    assert fake_ollama.requests[0].path == "/api/generate"


@pytest.mark.parametrize("request_", [PROMPT, CHAT], ids=["generate", "chat"])
async def test_stream_yields_pieces_then_done(
    backend: OllamaBackend, fake_ollama: Fake, request_: CompletionRequest
) -> None:
    fake_ollama.configure(reply="one two three four", chunks=4, prompt_tokens=6)

    chunks = await collect(backend.stream(make_config(fake_ollama.url, "ollama"), request_))

    assert text_of(chunks) == "one two three four"
    assert [c.done for c in chunks] == [False] * 4 + [True]
    final = chunks[-1]
    assert (final.finish_reason, final.prompt_tokens, final.completion_tokens) == ("stop", 6, 4)
    assert final.tokens_per_sec == pytest.approx(50.0)
    assert fake_ollama.bodies[0]["stream"] is True


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (404, ModelNotFound),
        (400, BackendRequestError),
        (500, BackendUnavailable),
        (503, BackendUnavailable),
    ],
)
@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_http_errors_are_typed(
    backend: OllamaBackend,
    fake_ollama: Fake,
    status: int,
    error_class: type[LLMRouterError],
    streaming: bool,
) -> None:
    fake_ollama.fail(status, "the fake says no")
    config = make_config(fake_ollama.url, "ollama")

    with pytest.raises(error_class) as caught:
        if streaming:
            await collect(backend.stream(config, PROMPT))
        else:
            await backend.complete(config, PROMPT)

    error = caught.value
    assert error.status_code == status
    assert (error.model, error.backend, error.endpoint) == ("phi3:mini", "ollama", fake_ollama.url)
    assert "the fake says no" in str(error)
    assert "phi3:mini" in str(error) and fake_ollama.url in str(error)


async def test_unknown_model_is_model_not_found(backend: OllamaBackend, fake_ollama: Fake) -> None:
    fake_ollama.configure(enforce_models=True, models=["llama3.2:latest"])

    with pytest.raises(ModelNotFound, match="model 'phi3:mini' not found"):
        await backend.complete(make_config(fake_ollama.url, "ollama"), PROMPT)


async def test_error_line_mid_stream(backend: OllamaBackend, fake_ollama: Fake) -> None:
    fake_ollama.configure(chunks=4, error_after=2, error="llama runner process has terminated")
    received = []

    with pytest.raises(BackendUnavailable, match="llama runner process has terminated"):
        async for chunk in backend.stream(make_config(fake_ollama.url, "ollama"), PROMPT):
            received.append(chunk)

    assert len(received) == 2


async def test_slow_answer_times_out_and_disconnects(
    backend: OllamaBackend, fake_ollama: Fake
) -> None:
    fake_ollama.configure(delay=30)
    config = make_config(fake_ollama.url, "ollama", timeout_seconds=0.2)

    with pytest.raises(BackendTimeout):
        await backend.complete(config, PROMPT)

    # The client hung up: the fake saw it instead of answering 30 s later.
    assert await fake_ollama.aborted_within(5)


async def test_stalled_stream_times_out(backend: OllamaBackend, fake_ollama: Fake) -> None:
    fake_ollama.configure(chunks=3, stall=30)
    config = make_config(fake_ollama.url, "ollama", timeout_seconds=0.3)
    received = []

    with pytest.raises(BackendTimeout):
        async for chunk in backend.stream(config, PROMPT):
            received.append(chunk)

    assert len(received) == 1


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_refused_port_is_unavailable(backend: OllamaBackend, streaming: bool) -> None:
    config = make_config(f"http://127.0.0.1:{free_port()}", "ollama")

    with pytest.raises(BackendUnavailable, match="cannot reach backend"):
        if streaming:
            await collect(backend.stream(config, PROMPT))
        else:
            await backend.complete(config, PROMPT)


@pytest.mark.parametrize(
    "fault",
    [
        {"garbage": True},
        {"missing_fields": True},
        {"cut_after": 0},
        {"drop_after": 0},
    ],
    ids=["garbage", "missing-fields", "cut", "dropped"],
)
@pytest.mark.parametrize("request_", [PROMPT, CHAT], ids=["generate", "chat"])
async def test_broken_answer_is_invalid(
    backend: OllamaBackend, fake_ollama: Fake, fault: dict[str, object], request_: CompletionRequest
) -> None:
    fake_ollama.configure(**fault)

    with pytest.raises(InvalidBackendResponse):
        await backend.complete(make_config(fake_ollama.url, "ollama"), request_)


@pytest.mark.parametrize(
    "fault",
    [
        {"garbage": True},
        {"missing_fields": True},
        {"cut_after": 2},
        {"drop_after": 2},
    ],
    ids=["garbage", "missing-fields", "cut-before-done", "dropped"],
)
@pytest.mark.parametrize("request_", [PROMPT, CHAT], ids=["generate", "chat"])
async def test_broken_stream_is_invalid(
    backend: OllamaBackend, fake_ollama: Fake, fault: dict[str, object], request_: CompletionRequest
) -> None:
    fake_ollama.configure(chunks=4, **fault)

    with pytest.raises(InvalidBackendResponse):
        await collect(backend.stream(make_config(fake_ollama.url, "ollama"), request_))


async def test_closing_a_stream_early_disconnects_upstream(
    backend: OllamaBackend, fake_ollama: Fake
) -> None:
    fake_ollama.configure(chunks=5, stall=30)

    async with aclosing(backend.stream(make_config(fake_ollama.url, "ollama"), PROMPT)) as chunks:
        first = await anext(chunks)

    assert first.text and not first.done
    assert await fake_ollama.aborted_within(5)


async def test_cancelling_a_stream_consumer_disconnects_upstream(
    backend: OllamaBackend, fake_ollama: Fake
) -> None:
    fake_ollama.configure(chunks=5, stall=30)
    first_chunk = asyncio.Event()

    async def consume() -> None:
        async for _ in backend.stream(make_config(fake_ollama.url, "ollama"), PROMPT):
            first_chunk.set()

    task = asyncio.create_task(consume())
    async with asyncio.timeout(10):
        await first_chunk.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await fake_ollama.aborted_within(5)
