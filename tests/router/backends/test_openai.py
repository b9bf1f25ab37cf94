"""OpenAIBackend (and MLXBackend's model rule) against the fake OpenAI-compatible server."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest

from llm_backends.router.backends.mlx import MLXBackend
from llm_backends.router.backends.openai import OpenAIBackend
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
from tests.fakes.fake_openai import OpenAIBehaviour
from tests.fakes.raw_tcp import raw_server
from tests.fakes.server import free_port
from tests.router.backends.helpers import collect, make_config, text_of

Fake = FakeServer[OpenAIBehaviour]

PROMPT = CompletionRequest(prompt="Say hi", temperature=0.2, max_tokens=64)
CHAT = CompletionRequest(
    messages=[{"role": "user", "content": "Hi"}], temperature=0.2, max_tokens=64
)


@pytest.fixture
def backend(client: HttpPool) -> OpenAIBackend:
    return OpenAIBackend(client, connect_timeout=2.0)


async def test_completion_request_and_answer(backend: OpenAIBackend, fake_openai: Fake) -> None:
    fake_openai.configure(reply="Hi there", chunks=2, prompt_tokens=3, finish_reason="length")
    request = CompletionRequest(prompt="Say hi", temperature=0.3, max_tokens=7, stop=["\n"])

    result = await backend.complete(make_config(fake_openai.url, "openai"), request)

    [sent] = fake_openai.requests
    assert sent.path == "/v1/completions"
    assert sent.body == {
        "model": "phi3:mini",
        "prompt": "Say hi",
        "temperature": 0.3,
        "max_tokens": 7,
        "stop": ["\n"],
        "stream": False,
    }
    assert result.text == "Hi there"
    assert (result.finish_reason, result.prompt_tokens, result.completion_tokens) == (
        "length",
        3,
        2,
    )
    assert result.backend_model == "phi3:mini"


async def test_chat_request_and_answer(backend: OpenAIBackend, fake_openai: Fake) -> None:
    fake_openai.configure(reply="Hello!")
    request = CompletionRequest(
        messages=[{"role": "user", "content": "Hi"}], system="Be kind.", max_tokens=8
    )

    result = await backend.complete(make_config(fake_openai.url, "openai"), request)

    assert result.text == "Hello!"
    assert result.finish_reason == "stop"
    [sent] = fake_openai.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hi"},
    ]
    assert "prompt" not in sent.body and "stop" not in sent.body


async def test_system_goes_before_a_completion_prompt(
    backend: OpenAIBackend, fake_openai: Fake
) -> None:
    request = CompletionRequest(prompt="Say hi", system="Be brief.")

    await backend.complete(make_config(fake_openai.url, "openai"), request)

    assert fake_openai.bodies[0]["prompt"] == "Be brief.\n\nSay hi"


async def test_temperature_zero_is_sent_as_zero(backend: OpenAIBackend, fake_openai: Fake) -> None:
    request = CompletionRequest(prompt="x", temperature=0.0, max_tokens=5)

    await backend.complete(make_config(fake_openai.url, "openai"), request)

    assert fake_openai.bodies[0]["temperature"] == 0


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
async def test_endpoint_with_or_without_v1(
    backend: OpenAIBackend, fake_openai: Fake, suffix: str
) -> None:
    config = make_config(fake_openai.url + suffix, "openai")

    await backend.complete(config, PROMPT)
    await backend.complete(config, CHAT)

    assert [r.path for r in fake_openai.requests] == ["/v1/completions", "/v1/chat/completions"]


async def test_backend_model_overrides_model_name(
    backend: OpenAIBackend, fake_openai: Fake
) -> None:
    config = make_config(fake_openai.url, "openai", backend_model="Qwen/Qwen2.5-7B-Instruct")

    await backend.complete(config, PROMPT)

    assert fake_openai.bodies[0]["model"] == "Qwen/Qwen2.5-7B-Instruct"


async def test_mlx_sends_no_model_unless_configured(client: HttpPool, fake_openai: Fake) -> None:
    mlx = MLXBackend(client)

    await mlx.complete(make_config(fake_openai.url, "mlx"), PROMPT)
    await collect(mlx.stream(make_config(fake_openai.url, "mlx"), CHAT))
    await mlx.complete(make_config(fake_openai.url, "mlx", backend_model="/models/phi3"), PROMPT)

    first, second, third = fake_openai.bodies
    assert "model" not in first and "model" not in second
    assert third["model"] == "/models/phi3"


@pytest.mark.parametrize("request_", [PROMPT, CHAT], ids=["completions", "chat"])
async def test_stream_with_usage(
    backend: OpenAIBackend, fake_openai: Fake, request_: CompletionRequest
) -> None:
    fake_openai.configure(reply="one two three", chunks=3, prompt_tokens=4, keepalive=2)

    chunks = await collect(backend.stream(make_config(fake_openai.url, "openai"), request_))

    assert text_of(chunks) == "one two three"
    assert [c.done for c in chunks] == [False] * 3 + [True]
    final = chunks[-1]
    assert (final.finish_reason, final.prompt_tokens, final.completion_tokens) == ("stop", 4, 3)
    sent = fake_openai.bodies[0]
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}


async def test_stream_without_usage(backend: OpenAIBackend, fake_openai: Fake) -> None:
    fake_openai.configure(include_usage=False, finish_reason="length")

    chunks = await collect(backend.stream(make_config(fake_openai.url, "openai"), CHAT))

    final = chunks[-1]
    assert final.done and final.finish_reason == "length"
    assert (final.prompt_tokens, final.completion_tokens) == (None, None)
    assert text_of(chunks) == fake_openai.behaviour.reply


async def test_stream_without_done_marker_after_finish(
    backend: OpenAIBackend, fake_openai: Fake
) -> None:
    fake_openai.configure(send_done=False)

    chunks = await collect(backend.stream(make_config(fake_openai.url, "openai"), PROMPT))

    assert chunks[-1].done and chunks[-1].prompt_tokens == 5
    assert text_of(chunks) == fake_openai.behaviour.reply


@pytest.mark.parametrize("style", ["openai", "mlx", "vllm"])
@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (404, ModelNotFound),
        (400, BackendRequestError),
        (422, BackendRequestError),
        (500, BackendUnavailable),
        (503, BackendUnavailable),
    ],
)
@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_http_errors_are_typed(
    backend: OpenAIBackend,
    fake_openai: Fake,
    style: str,
    status: int,
    error_class: type[LLMRouterError],
    streaming: bool,
) -> None:
    fake_openai.configure(error_style=style)
    fake_openai.fail(status, "the fake says no")
    config = make_config(fake_openai.url, "openai")

    with pytest.raises(error_class) as caught:
        if streaming:
            await collect(backend.stream(config, CHAT))
        else:
            await backend.complete(config, CHAT)

    error = caught.value
    assert error.status_code == status
    assert (error.model, error.backend, error.endpoint) == ("phi3:mini", "openai", fake_openai.url)
    # The server's message, not a dump of its JSON.
    assert f"HTTP {status}: the fake says no (" in str(error)


async def test_unknown_model_is_model_not_found(backend: OpenAIBackend, fake_openai: Fake) -> None:
    fake_openai.configure(enforce_models=True, models=["llama3.2:latest"])

    with pytest.raises(ModelNotFound, match="The model `phi3:mini` does not exist"):
        await backend.complete(make_config(fake_openai.url, "openai"), PROMPT)


@pytest.mark.parametrize("style", ["openai", "mlx"])
async def test_error_event_mid_stream(
    backend: OpenAIBackend, fake_openai: Fake, style: str
) -> None:
    fake_openai.configure(chunks=4, error_after=2, error="out of memory", error_style=style)
    received = []

    with pytest.raises(BackendUnavailable, match="out of memory"):
        async for chunk in backend.stream(make_config(fake_openai.url, "openai"), PROMPT):
            received.append(chunk)

    assert len(received) == 2


async def test_slow_answer_times_out_and_disconnects(
    backend: OpenAIBackend, fake_openai: Fake
) -> None:
    fake_openai.configure(delay=30)
    config = make_config(fake_openai.url, "openai", timeout_seconds=0.2)

    with pytest.raises(BackendTimeout):
        await backend.complete(config, PROMPT)

    assert await fake_openai.aborted_within(5)


async def test_a_dripping_answer_times_out_within_timeout_seconds(backend: OpenAIBackend) -> None:
    """A byte every 50 ms never lets a per-read timeout fire: the whole answer has one
    deadline, timeout_seconds, connecting included (here 0.5 s, guarded at 2 s: the
    connect allowance, 2 s here, must not be added on top)."""
    with raw_server("drip") as server:
        config = make_config(server.url, "openai", timeout_seconds=0.5)
        async with asyncio.timeout(2.0):
            with pytest.raises(BackendTimeout):
                await backend.complete(config, PROMPT)


async def test_stalled_stream_times_out(backend: OpenAIBackend, fake_openai: Fake) -> None:
    fake_openai.configure(chunks=3, stall=30)
    config = make_config(fake_openai.url, "openai", timeout_seconds=0.3)
    received = []

    with pytest.raises(BackendTimeout):
        async for chunk in backend.stream(config, CHAT):
            received.append(chunk)

    assert len(received) == 1


@pytest.mark.parametrize("streaming", [False, True], ids=["complete", "stream"])
async def test_refused_port_is_unavailable(backend: OpenAIBackend, streaming: bool) -> None:
    config = make_config(f"http://127.0.0.1:{free_port()}", "openai")

    with pytest.raises(BackendUnavailable, match="cannot reach backend"):
        if streaming:
            await collect(backend.stream(config, PROMPT))
        else:
            await backend.complete(config, PROMPT)


@pytest.mark.parametrize(
    "fault",
    [{"garbage": True}, {"missing_fields": True}, {"cut_after": 0}, {"drop_after": 0}],
    ids=["garbage", "missing-fields", "cut", "dropped"],
)
@pytest.mark.parametrize("request_", [PROMPT, CHAT], ids=["completions", "chat"])
async def test_broken_answer_is_invalid(
    backend: OpenAIBackend, fake_openai: Fake, fault: dict[str, object], request_: CompletionRequest
) -> None:
    fake_openai.configure(**fault)

    with pytest.raises(InvalidBackendResponse):
        await backend.complete(make_config(fake_openai.url, "openai"), request_)


@pytest.mark.parametrize(
    "fault",
    [{"garbage": True}, {"missing_fields": True}, {"cut_after": 2}, {"drop_after": 2}],
    ids=["garbage", "missing-fields", "cut-before-done", "dropped"],
)
@pytest.mark.parametrize("request_", [PROMPT, CHAT], ids=["completions", "chat"])
async def test_broken_stream_is_invalid(
    backend: OpenAIBackend, fake_openai: Fake, fault: dict[str, object], request_: CompletionRequest
) -> None:
    fake_openai.configure(chunks=4, **fault)

    with pytest.raises(InvalidBackendResponse):
        await collect(backend.stream(make_config(fake_openai.url, "openai"), request_))


async def test_closing_a_stream_early_disconnects_upstream(
    backend: OpenAIBackend, fake_openai: Fake
) -> None:
    fake_openai.configure(chunks=5, stall=30)

    async with aclosing(backend.stream(make_config(fake_openai.url, "openai"), CHAT)) as chunks:
        first = await anext(chunks)

    assert first.text and not first.done
    assert await fake_openai.aborted_within(5)


async def test_cancelling_a_stream_consumer_disconnects_upstream(
    backend: OpenAIBackend, fake_openai: Fake
) -> None:
    fake_openai.configure(chunks=5, stall=30)
    first_chunk = asyncio.Event()

    async def consume() -> None:
        async for _ in backend.stream(make_config(fake_openai.url, "openai"), PROMPT):
            first_chunk.set()

    task = asyncio.create_task(consume())
    async with asyncio.timeout(10):
        await first_chunk.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert await fake_openai.aborted_within(5)


async def test_connection_is_reused_after_a_full_stream(
    backend: OpenAIBackend, fake_openai: Fake
) -> None:
    """Reading a stream to its end leaves the keep-alive connection in the pool."""
    config = make_config(fake_openai.url, "openai")

    await collect(backend.stream(config, CHAT))
    await collect(backend.stream(config, CHAT))

    first, second = fake_openai.requests
    assert first.client_port == second.client_port
