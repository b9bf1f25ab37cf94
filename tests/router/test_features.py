"""The library's features: keyword arguments on generate/chat/stream, messages in either
protocol's shape, capability refusals, n as several calls, and max_tokens as a maximum."""

from __future__ import annotations

import json
from contextlib import aclosing

import pytest
from structlog.testing import capture_logs

from llm_backends import BackendRequestError
from llm_backends.router.types import ToolCallDelta
from tests.fakes.common import FakeServer
from tests.router.support import MODEL, DictSource

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}
HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("kind", ["ollama", "openai"])
async def test_chat_with_tools_returns_openai_shaped_calls(
    make_router, source: DictSource, fake_ollama: FakeServer, fake_openai: FakeServer, kind: str
) -> None:
    fake = fake_ollama if kind == "ollama" else fake_openai
    source.add(MODEL, kind, fake.url)
    fake.configure(tool_calls=[CALL])
    router = make_router(config_source=source)
    result = await router.chat(MODEL, HI, tools=[TOOL], tool_choice="auto")
    assert result["finish_reason"] == "tool_calls"
    (call,) = result["tool_calls"]
    assert call["type"] == "function" and call["id"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    chunks = router.stream_chat_chunks(MODEL, HI, tools=[TOOL])
    pieces: list[ToolCallDelta] = []
    async with aclosing(chunks):
        async for chunk in chunks:
            pieces.extend(chunk.tool_calls)
    assert pieces[0].index == 0 and pieces[0].name == "get_weather"
    assert json.loads("".join(p.arguments for p in pieces)) == {"city": "Paris"}


async def test_messages_in_either_shape_and_features_as_arguments(
    make_router, source: DictSource, fake_ollama: FakeServer
) -> None:
    source.add(MODEL, "ollama", fake_ollama.url)
    router = make_router(config_source=source)
    openai_shaped = [
        {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is it?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,aGk="}},
            ],
        },
    ]
    await router.chat(
        MODEL,
        openai_shaped,
        response_format={"type": "json_object"},
        think="high",
        top_k=5,
        seed=1,
        keep_alive="1m",
        options={"num_ctx": 4096, "mirostat": 1},
    )
    sent = fake_ollama.bodies[-1]
    assert sent["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is it?", "images": ["aGk="]},
    ]
    assert (sent["format"], sent["think"], sent["keep_alive"]) == ("json", "high", "1m")
    assert sent["options"] == {
        "temperature": 0.7,
        "num_predict": 2048,
        "top_k": 5,
        "seed": 1,
        "num_ctx": 4096,
        "mirostat": 1,
    }
    # Ollama's shape (images beside content, format as a schema) works the same.
    schema = {"type": "object"}
    await router.generate(MODEL, "x", images=[b"hi"], format=schema)
    assert fake_ollama.bodies[-1]["images"] == ["aGk="]
    assert fake_ollama.bodies[-1]["format"] == schema


async def test_defaults_are_absent_values(
    make_router, source: DictSource, fake_openai: FakeServer
) -> None:
    source.add(MODEL, "openai", fake_openai.url)
    router = make_router(config_source=source)
    await router.chat(
        MODEL, HI, tools=[], format="", options={}, think=False, n=1, logprobs=None, seed=None
    )
    assert set(fake_openai.bodies[-1]) == {
        "model",
        "messages",
        "temperature",
        "max_tokens",
        "stream",
    }


async def test_refusal_names_field_and_backend(
    make_router, source: DictSource, fake_openai: FakeServer
) -> None:
    source.add(MODEL, "mlx", fake_openai.url)
    router = make_router(config_source=source)
    with pytest.raises(BackendRequestError) as raised:
        await router.generate(MODEL, "x", suffix="tail")
    assert (
        raised.value.reason == "suffix: the mlx backend does not take a suffix (fill-in-the-middle)"
    )
    assert not fake_openai.requests


async def test_n_to_a_backend_without_n_is_n_calls_bounded(
    make_router, source: DictSource, fake_ollama: FakeServer
) -> None:
    source.add(MODEL, "ollama", fake_ollama.url)
    router = make_router(config_source=source)
    result = await router.generate(MODEL, "x", n=3)
    assert [c["index"] for c in result["choices"]] == [0, 1, 2]
    assert len(fake_ollama.requests) == 3
    with pytest.raises(BackendRequestError) as raised:
        await router.generate(MODEL, "x", n=9)
    assert "MAX_FANOUT_CALLS" in raised.value.reason


async def test_max_tokens_is_a_maximum(
    make_router, source: DictSource, fake_ollama: FakeServer
) -> None:
    source.add(MODEL, "ollama", fake_ollama.url, max_tokens=100)
    router = make_router(config_source=source)
    with capture_logs() as logs:
        result = await router.generate(MODEL, "x", max_tokens=500)
    assert fake_ollama.bodies[-1]["options"]["num_predict"] == 100
    assert result["max_tokens_capped"] == 100
    line = next(e for e in logs if e["event"] == "routing_llm_request")
    assert line["max_tokens_capped"] == 100
    result = await router.generate(MODEL, "x", max_tokens=50)
    assert fake_ollama.bodies[-1]["options"]["num_predict"] == 50
    assert result["max_tokens_capped"] is None
    stream = router.stream_chunks(MODEL, "x", max_tokens=101)
    async with aclosing(stream):
        async for _ in stream:
            pass
    assert stream.max_tokens_capped == 100


async def test_hops_go_out_as_the_loop_protection_header(
    make_router, source: DictSource, fake_ollama: FakeServer
) -> None:
    from llm_backends.hops import INSTANCE_ID
    from llm_backends.router.requests import build_request

    source.add(MODEL, "ollama", fake_ollama.url)
    router = make_router(config_source=source)
    await router.complete(MODEL, build_request(prompt="x", hops=("gw-a", "gw-b")))
    # The incoming hops plus this process's id (the contract of llm_backends.hops).
    assert fake_ollama.requests[-1].headers["x-llm-backends-hops"] == f"gw-a,gw-b,{INSTANCE_ID}"
    await router.generate(MODEL, "x")
    assert fake_ollama.requests[-1].headers["x-llm-backends-hops"] == INSTANCE_ID


def test_answer_types_keep_the_field_order_the_hot_path_fills_positionally() -> None:
    """outcomes.succeeded, requests.build_request and the OpenAI/Ollama backends build
    these positionally (keywords cost ~1 µs a call): a reordering must fail here."""
    from dataclasses import fields

    from llm_backends.router.types import Choice, Completion, CompletionRequest, Result

    def names(cls: type) -> list[str]:
        return [f.name for f in fields(cls)]

    assert names(Completion)[:10] == [
        "text", "finish_reason", "prompt_tokens", "completion_tokens", "tokens_per_sec",
        "backend_model", "tool_calls", "reasoning", "logprobs", "choices",
    ]  # fmt: skip
    assert names(Choice) == [
        "index", "text", "finish_reason", "tool_calls", "reasoning", "logprobs",
    ]  # fmt: skip
    assert names(Result)[:11] == [
        "response", "backend", "model", "done", "finish_reason", "prompt_tokens",
        "completion_tokens", "latency_ms", "tokens_per_sec", "fallback_from", "endpoint",
    ]  # fmt: skip
    assert names(CompletionRequest)[:6] == [
        "prompt", "messages", "system", "temperature", "max_tokens", "stop",
    ]  # fmt: skip
