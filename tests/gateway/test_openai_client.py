"""The official `openai` package against the gateway: sync, async, streaming, both endpoints,
answered by backends of every protocol (translation Ollama -> OpenAI included)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.common import FakeServer
from tests.gateway.conftest import GatewayServer

MODEL = "phi3:mini"
REPLY = "Hello from the fake server."
MESSAGES: list[Any] = [{"role": "user", "content": "Say hello"}]


def test_chat_answered_by_ollama_is_translated(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    raw = gateway.openai().chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, temperature=0, max_tokens=7, stop=["\n"]
    )
    completion = raw.parse()
    assert raw.headers["x-llm-backend"] == "ollama"
    assert float(raw.headers["x-llm-overhead-ms"]) >= 0
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == REPLY
    assert completion.choices[0].finish_reason == "stop"
    # Ollama's prompt_eval_count / eval_count became usage.
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (5, 3)
    assert completion.usage.total_tokens == 8
    sent = fake_ollama.bodies[-1]
    assert sent["messages"] == MESSAGES
    assert sent["options"] == {"temperature": 0, "num_predict": 7, "stop": ["\n"]}


def test_length_becomes_finish_reason_length(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    fake_ollama.configure(finish_reason="length")
    completion = gateway.openai().chat.completions.create(model=MODEL, messages=MESSAGES)
    assert completion.choices[0].finish_reason == "length"


def test_chat_stream_answered_by_ollama(gateway: GatewayServer, fake_ollama: FakeServer) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    stream = gateway.openai().chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (5, 3)
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1


def test_chat_stream_without_include_usage_has_no_usage_chunk(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    chunks = list(
        gateway.openai().chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    )
    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)


def test_completions_on_an_openai_backend(gateway: GatewayServer, fake_openai: FakeServer) -> None:
    gateway.add(MODEL, "openai", fake_openai.url, backend_model="served-name")
    raw = gateway.openai().completions.with_raw_response.create(
        model=MODEL, prompt="Once upon", max_tokens=12
    )
    completion = raw.parse()
    assert raw.headers["x-llm-backend"] == "openai"
    assert completion.object == "text_completion"
    assert completion.model == MODEL
    assert completion.choices[0].text == REPLY
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    sent = fake_openai.bodies[-1]
    assert (sent["model"], sent["prompt"], sent["max_tokens"]) == ("served-name", "Once upon", 12)


def test_completions_stream(gateway: GatewayServer, fake_openai: FakeServer) -> None:
    gateway.add(MODEL, "openai", fake_openai.url)
    stream = gateway.openai().completions.create(
        model=MODEL, prompt="Once upon", stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == REPLY
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 5


def test_completions_answered_by_ollama_generate(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    completion = gateway.openai().completions.create(model=MODEL, prompt=["Once upon"])
    assert completion.choices[0].text == REPLY
    assert fake_ollama.requests[-1].path == "/api/generate"
    assert fake_ollama.bodies[-1]["prompt"] == "Once upon"


def test_developer_role_and_content_parts_reach_the_backend_as_text(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    gateway.openai().chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "developer", "content": "Be brief."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hi "}, {"type": "text", "text": "there"}],
            },
        ],
    )
    assert fake_ollama.bodies[-1]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi there"},
    ]


def test_models_lists_enabled_configs_by_name(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    gateway.add("zeta", "ollama", fake_ollama.url)
    gateway.add("alpha", "openai", fake_ollama.url)
    gateway.add("off", "ollama", fake_ollama.url, enabled=False)
    fake_ollama.configure(models=[])  # the default Ollama adds nothing to the list
    models = gateway.openai().models.list()
    assert [m.id for m in models.data] == ["alpha", "zeta"]
    assert [m.owned_by for m in models.data] == ["openai", "ollama"]
    assert all(m.object == "model" and m.created > 0 for m in models.data)


async def test_async_client_chat_and_stream(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    async with gateway.async_openai() as client:
        completion = await client.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert completion.choices[0].message.content == REPLY
        stream = await client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        parts = [chunk.choices[0].delta.content async for chunk in stream if chunk.choices]
    assert "".join(p or "" for p in parts) == REPLY


@pytest.mark.parametrize("stream", [False, True])
def test_unconfigured_model_goes_to_the_default_ollama(
    gateway: GatewayServer, fake_ollama: FakeServer, stream: bool
) -> None:
    response = gateway.openai().chat.completions.with_raw_response.create(
        model="llama3.2:latest", messages=MESSAGES, stream=stream
    )
    assert response.headers["x-llm-backend"] == "ollama"
    answer = response.parse()
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
    else:
        text = answer.choices[0].message.content
    assert text == REPLY
    assert fake_ollama.bodies[-1]["model"] == "llama3.2:latest"
