"""The official `openai` client through the gateway with every feature, to Ollama, a vLLM-like
server and mlx_lm.server (fakes), judged by what the client parses and what the backend got."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.fakes.common import FakeServer
from tests.gateway.conftest import GatewayServer
from tests.gateway.features import (
    CALL,
    HI,
    KINDS,
    MODEL,
    OTHER_TOOL,
    PNG,
    TOOL,
    configure,
)


@pytest.mark.parametrize("kind", KINDS)
def test_tool_calls_whole(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer, kind: str
) -> None:
    fake = configure(gateway, kind, fake_ollama, fake_openai)
    fake.configure(tool_calls=[CALL])
    completion = gateway.openai().chat.completions.create(
        model=MODEL,
        messages=HI,
        tools=[TOOL],  # type: ignore[list-item]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.type == "function" and call.id
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    if kind == "ollama":
        assert call.id.startswith("call_")  # Ollama gave none: minted
        assert fake.bodies[-1]["tools"] == [TOOL]


@pytest.mark.parametrize("kind", KINDS)
def test_tool_calls_streamed(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer, kind: str
) -> None:
    fake = configure(gateway, kind, fake_ollama, fake_openai)
    fake.configure(tool_calls=[CALL, {"name": "get_time", "arguments": {}}])
    chunks = list(
        gateway.openai().chat.completions.create(
            model=MODEL,
            messages=HI,
            tools=[TOOL, OTHER_TOOL],
            stream=True,  # type: ignore[list-item]
        )
    )
    pieces = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or ())]
    assert sorted({p.index for p in pieces}) == [0, 1]
    heads = [p for p in pieces if p.id]
    assert [h.function.name for h in heads] == ["get_weather", "get_time"]  # type: ignore[union-attr]
    assert len({h.id for h in heads}) == 2
    first = "".join(p.function.arguments or "" for p in pieces if p.index == 0)  # type: ignore[union-attr]
    assert json.loads(first) == {"city": "Paris"}
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["tool_calls"]


def test_tool_history_to_ollama_has_objects_and_tool_names(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    configure(gateway, "ollama", fake_ollama, fake_openai)
    messages: list[Any] = [
        *HI,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    gateway.openai().chat.completions.create(model=MODEL, messages=messages, tools=[TOOL])  # type: ignore[list-item]
    sent = fake_ollama.bodies[-1]["messages"]
    assert sent[1]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": {"city": "Paris"},
    }
    assert sent[2] == {"role": "tool", "content": "sunny", "tool_name": "get_weather"}


def test_tool_choice_rules_for_ollama(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    configure(gateway, "ollama", fake_ollama, fake_openai)
    client = gateway.openai()
    client.chat.completions.create(model=MODEL, messages=HI, tools=[TOOL], tool_choice="none")  # type: ignore[list-item]
    assert "tools" not in fake_ollama.bodies[-1]
    client.chat.completions.create(
        model=MODEL,
        messages=HI,
        tools=[TOOL, OTHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert fake_ollama.bodies[-1]["tools"] == [OTHER_TOOL]
    asked = len(fake_ollama.requests)
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model=MODEL,
            messages=HI,
            tools=[TOOL],
            tool_choice="required",  # type: ignore[list-item]
        )
    assert raised.value.body["message"].startswith("tool_choice: the ollama backend cannot force")  # type: ignore[index]
    assert len(fake_ollama.requests) == asked  # refused before any call


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_structured_output(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer, kind: str
) -> None:
    fake = configure(gateway, kind, fake_ollama, fake_openai)
    fake.configure(reply='{"city": "Paris"}')
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    client = gateway.openai()
    completion = client.chat.completions.create(
        model=MODEL,
        messages=HI,
        response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
    )
    assert json.loads(completion.choices[0].message.content or "") == {"city": "Paris"}
    sent = fake.bodies[-1]
    if kind == "ollama":
        assert sent["format"] == schema
        client.chat.completions.create(
            model=MODEL, messages=HI, response_format={"type": "json_object"}
        )
        assert fake.bodies[-1]["format"] == "json"
    else:
        assert sent["response_format"]["json_schema"]["schema"] == schema


@pytest.mark.parametrize(
    ("kind", "extra", "field"),
    [
        ("mlx", {"response_format": {"type": "json_object"}}, "response_format"),
        ("mlx", {"n": 9, "stream": True}, "n"),
        ("ollama", {"n": 9}, "n"),
        (
            "mlx",
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,"}}
                        ],
                    }
                ]
            },
            "messages.0.images.0",
        ),
        (
            "mlx",
            {"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "required"},
            "tool_choice",
        ),
    ],
)
def test_what_a_backend_cannot_honour_is_a_400_naming_field_and_backend(
    gateway: GatewayServer,
    fake_ollama: FakeServer,
    fake_openai: FakeServer,
    kind: str,
    extra: dict[str, Any],
    field: str,
) -> None:
    fake = configure(gateway, kind, fake_ollama, fake_openai)
    response = gateway.http().post(
        "/v1/chat/completions", json={"model": MODEL, "messages": HI, **extra}
    )
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert message.startswith(f"{field}: the {kind} backend")
    assert response.headers["x-llm-backend"] == kind
    assert not fake.requests


def image_message(url: str) -> list[Any]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is it?"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]


def test_images_to_ollama_are_base64_and_urls_are_refused(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    configure(gateway, "ollama", fake_ollama, fake_openai)
    client = gateway.openai()
    client.chat.completions.create(
        model=MODEL, messages=image_message(f"data:image/png;base64,{PNG}")
    )
    assert fake_ollama.bodies[-1]["messages"][0] == {
        "role": "user",
        "content": "what is it?",
        "images": [PNG],
    }
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(
            model=MODEL, messages=image_message("https://example.com/cat.png")
        )
    assert "messages.0.images.0: the ollama backend does not fetch image URLs" in str(raised.value)


def test_image_urls_reach_an_openai_backend_untouched_and_mlx_refuses_images(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    configure(gateway, "openai", fake_ollama, fake_openai)
    messages = image_message("https://example.com/cat.png")
    gateway.openai().chat.completions.create(model=MODEL, messages=messages)
    assert fake_openai.bodies[-1]["messages"] == messages


@pytest.mark.parametrize("kind", ["ollama", "openai", "mlx"])
def test_reasoning_whole_and_streamed(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer, kind: str
) -> None:
    fake = configure(gateway, kind, fake_ollama, fake_openai)
    client = gateway.openai()
    completion = client.chat.completions.create(model=MODEL, messages=HI, reasoning_effort="low")
    message = completion.choices[0].message
    assert message.model_extra is not None
    assert message.model_extra["reasoning_content"] == "Let me think."
    assert message.content == "Hello from the fake server."
    sent = fake.bodies[-1]
    expected = {"ollama": ("think", "low"), "openai": ("reasoning_effort", "low")}
    if kind == "mlx":
        assert sent["chat_template_kwargs"] == {"enable_thinking": True}
    else:
        field, value = expected[kind]
        assert sent[field] == value
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=HI, reasoning_effort="high", stream=True
        )
    )
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
        for c in chunks
        if c.choices
    )
    assert reasoning == "Let me think."


def test_sampling_options_and_n_to_ollama(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    configure(gateway, "ollama", fake_ollama, fake_openai)
    completion = gateway.openai().chat.completions.create(
        model=MODEL,
        messages=HI,
        temperature=0.2,
        top_p=0.9,
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=0.25,
        max_completion_tokens=33,
        n=3,
        extra_body={"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.1},
    )
    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert len(fake_ollama.requests) == 3  # Ollama ignores n: three calls
    assert fake_ollama.bodies[-1]["options"] == {
        "temperature": 0.2,
        "num_predict": 33,
        "top_p": 0.9,
        "seed": 7,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "top_k": 20,
        "min_p": 0.05,
        "repeat_penalty": 1.1,
    }
    assert completion.usage is not None and completion.usage.completion_tokens == 9


def test_logprobs_and_n_from_a_vllm_like_backend(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    configure(gateway, "openai", fake_ollama, fake_openai)
    completion = gateway.openai().chat.completions.create(
        model=MODEL, messages=HI, n=2, logprobs=True, top_logprobs=1
    )
    assert len(completion.choices) == 2 and len(fake_openai.requests) == 1
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content
    assert logprobs.content[0].token == "Hello"
    text = gateway.openai().completions.create(model=MODEL, prompt="x", logprobs=1)
    assert text.choices[0].logprobs is not None
    assert text.choices[0].logprobs.tokens[0] == "Hello"  # type: ignore[index]


def test_same_protocol_forwards_the_clients_fields_untouched(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    configure(gateway, "openai", fake_ollama, fake_openai, backend_model="served-name")
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi", "name": "ann"}],
        "temperature": 0.3,
        "max_tokens": 12,
        "user": "u-1",
        "logit_bias": {"50256": -100},
        "guided_choice": ["a", "b"],  # a vLLM extension the gateway knows nothing about
        "tools": [TOOL],
        "tool_choice": "auto",
    }
    response = gateway.http().post("/v1/chat/completions", json=body)
    assert response.status_code == 200
    assert fake_openai.bodies[-1] == {**body, "model": "served-name", "stream": False}


def test_max_tokens_above_the_configs_is_capped_and_said(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    configure(gateway, "openai", fake_ollama, fake_openai, max_tokens=100)
    client = gateway.openai()
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=HI, max_tokens=5000
    )
    assert raw.headers["x-llm-max-tokens-capped"] == "100"
    assert fake_openai.bodies[-1]["max_tokens"] == 100
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=HI, max_completion_tokens=5000, stream=True
    )
    list(raw.parse())
    assert raw.headers["x-llm-max-tokens-capped"] == "100"
    assert fake_openai.bodies[-1]["max_completion_tokens"] == 100
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=HI, max_tokens=50)
    assert "x-llm-max-tokens-capped" not in raw.headers
    assert fake_openai.bodies[-1]["max_tokens"] == 50


def test_logprobs_through_ollama(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    configure(gateway, "ollama", fake_ollama, fake_openai)
    fake_ollama.configure(reply="Hello there")
    client = gateway.openai()
    completion = client.chat.completions.create(
        model=MODEL, messages=HI, logprobs=True, top_logprobs=1
    )
    assert (fake_ollama.bodies[-1]["logprobs"], fake_ollama.bodies[-1]["top_logprobs"]) == (
        True,
        1,
    )
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert [e.token for e in logprobs.content] == ["Hello", "there"]
    assert logprobs.content[0].top_logprobs[0].logprob == -0.5
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=HI, logprobs=True, stream=True)
    )
    tokens = [
        e.token
        for c in chunks
        if c.choices and c.choices[0].logprobs and c.choices[0].logprobs.content
        for e in c.choices[0].logprobs.content
    ]
    assert tokens  # streamed entries reach the client


@pytest.mark.parametrize("kind", ["ollama", "mlx"])
def test_streamed_n_from_a_backend_without_n_is_n_merged_streams(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer, kind: str
) -> None:
    fake = configure(gateway, kind, fake_ollama, fake_openai)
    chunks = list(
        gateway.openai().chat.completions.create(
            model=MODEL,
            messages=HI,
            n=2,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    texts: dict[int, str] = {0: "", 1: ""}
    finishes: dict[int, str] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finishes[choice.index] = choice.finish_reason
    assert texts == {0: "Hello from the fake server.", 1: "Hello from the fake server."}
    assert finishes == {0: "stop", 1: "stop"}
    assert len(fake.requests) == 2
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6


def test_named_tool_choice_to_mlx_offers_only_that_tool(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    """mlx_lm.server ignores tool_choice: the named tool is the only one it is offered."""
    configure(gateway, "mlx", fake_ollama, fake_openai)
    gateway.openai().chat.completions.create(
        model=MODEL,
        messages=HI,
        tools=[TOOL, OTHER_TOOL],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    sent = fake_openai.bodies[-1]
    assert sent["tools"] == [OTHER_TOOL]
    assert "tool_choice" not in sent and "model" not in sent
