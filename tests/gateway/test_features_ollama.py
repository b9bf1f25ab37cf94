"""The official `ollama` client through the gateway with every feature, to Ollama, a
vLLM-like server and mlx_lm.server (fakes), judged by what the client parses and what the
backend received."""

from __future__ import annotations

from typing import Any

import ollama
import orjson
import pytest

from tests.fakes.common import FakeServer
from tests.gateway.conftest import GatewayServer
from tests.gateway.features import CALL, HI, KINDS, MODEL, PNG, TOOL, configure


@pytest.mark.parametrize("kind", KINDS)
def test_tool_calls_whole_and_streamed(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer, kind: str
) -> None:
    fake = configure(gateway, kind, fake_ollama, fake_openai)
    fake.configure(tool_calls=[CALL])
    client = gateway.ollama()
    whole = client.chat(model=MODEL, messages=HI, tools=[TOOL], stream=False)
    calls = whole.message.tool_calls or []
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert whole.done_reason == "stop"
    parts = list(client.chat(model=MODEL, messages=HI, tools=[TOOL], stream=True))
    streamed = [c for p in parts for c in (p.message.tool_calls or ())]
    assert [(c.function.name, c.function.arguments) for c in streamed] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert parts[-1].done
    if kind != "ollama":
        sent = fake.bodies[-1]
        assert sent["tools"] == [TOOL]


@pytest.mark.parametrize("kind", ["openai", "mlx"])
def test_empty_tools_and_default_values_are_absent(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer, kind: str
) -> None:
    """The ollama client sends `tools: []` on every chat (vLLM refuses it): not passed on."""
    fake = configure(gateway, kind, fake_ollama, fake_openai)
    body = {
        "model": MODEL,
        "messages": HI,
        "tools": [],
        "format": "",
        "options": {},
        "think": False,
        "stream": False,
    }
    response = gateway.http().post("/api/chat", json=body)
    assert response.status_code == 200, response.text
    sent = fake.bodies[-1]
    for field in ("tools", "response_format", "reasoning_effort", "chat_template_kwargs"):
        assert field not in sent


def test_tool_history_to_an_openai_backend_gets_ids_and_strings(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    configure(gateway, "openai", fake_ollama, fake_openai)
    messages: list[Any] = [
        *HI,
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
        },
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    ]
    gateway.ollama().chat(model=MODEL, messages=messages, tools=[TOOL])
    sent = fake_openai.bodies[-1]["messages"]
    call = sent[1]["tool_calls"][0]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert orjson.loads(call["function"]["arguments"]) == {"city": "Paris"}
    assert sent[2] == {
        "role": "tool",
        "content": "sunny",
        "tool_call_id": call["id"],  # the id of the call it answers
        "name": "get_weather",
    }


def test_structured_output_to_an_openai_backend(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    configure(gateway, "openai", fake_ollama, fake_openai)
    fake_openai.configure(reply='{"city": "Paris"}')
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    client = gateway.ollama()
    answer = client.chat(model=MODEL, messages=HI, format=schema, stream=False)
    assert orjson.loads(answer.message.content or "") == {"city": "Paris"}
    assert fake_openai.bodies[-1]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }
    client.generate(model=MODEL, prompt="x", format="json", stream=False)
    assert fake_openai.bodies[-1]["response_format"] == {"type": "json_object"}


def test_structured_output_to_mlx_is_refused_naming_format(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    configure(gateway, "mlx", fake_ollama, fake_openai)
    with pytest.raises(ollama.ResponseError) as raised:
        gateway.ollama().chat(model=MODEL, messages=HI, format="json", stream=False)
    assert raised.value.status_code == 400
    assert raised.value.error.startswith("format: the mlx backend does not take structured output")
    assert not fake_openai.requests


def test_images_to_an_openai_backend_become_data_urls(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    configure(gateway, "openai", fake_ollama, fake_openai)
    client = gateway.ollama()
    client.chat(
        model=MODEL, messages=[{"role": "user", "content": "what?", "images": [PNG]}], stream=False
    )
    assert fake_openai.bodies[-1]["messages"][0]["content"] == [
        {"type": "text", "text": "what?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]
    with pytest.raises(ollama.ResponseError) as raised:
        client.generate(model=MODEL, prompt="what?", images=[PNG], stream=False)
    assert raised.value.error.startswith("images: the openai backend takes images only in chat")


@pytest.mark.parametrize("kind", KINDS)
def test_thinking_whole_and_streamed(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer, kind: str
) -> None:
    fake = configure(gateway, kind, fake_ollama, fake_openai)
    client = gateway.ollama()
    answer = client.chat(model=MODEL, messages=HI, think=True, stream=False)
    assert answer.message.thinking == "Let me think."
    parts = list(client.chat(model=MODEL, messages=HI, think=True, stream=True))
    assert "".join(p.message.thinking or "" for p in parts) == "Let me think."
    assert "".join(p.message.content or "" for p in parts) == "Hello from the fake server."
    sent = fake.bodies[-1]
    if kind == "openai":
        assert sent["reasoning_effort"] == "medium"
    if kind == "ollama":
        assert sent["think"] is True


def test_options_and_keep_alive_and_suffix_to_an_openai_backend(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    configure(gateway, "openai", fake_ollama, fake_openai)
    gateway.ollama().generate(
        model=MODEL,
        prompt="def f(",
        suffix="    return x",
        keep_alive="5m",
        stream=False,
        options={
            "temperature": 0.1,
            "num_predict": 9,
            "top_k": 4,
            "top_p": 0.5,
            "seed": 3,
            "repeat_penalty": 1.2,
            "stop": ["\n\n"],
        },
    )
    sent = fake_openai.bodies[-1]
    assert sent["prompt"] == "def f(" and sent["suffix"] == "    return x"
    assert (sent["temperature"], sent["max_tokens"], sent["stop"]) == (0.1, 9, ["\n\n"])
    assert (sent["top_k"], sent["top_p"], sent["seed"], sent["repetition_penalty"]) == (
        4,
        0.5,
        3,
        1.2,
    )


def test_same_protocol_forwards_the_clients_fields_untouched(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    configure(gateway, "ollama", fake_ollama, fake_openai, backend_model="llama3.2:latest")
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi", "images": [PNG]}],
        "tools": [],
        "format": "",
        "think": False,
        "keep_alive": -1,
        "stream": False,
        "options": {"temperature": 0.3, "num_predict": 10, "mirostat": 2, "num_gpu": 1},
        "template": "{{ .Prompt }}",  # unknown to the gateway: reaches Ollama anyway
    }
    response = gateway.http().post("/api/chat", json=body)
    assert response.status_code == 200, response.text
    assert fake_ollama.bodies[-1] == {**body, "model": "llama3.2:latest"}


def test_max_tokens_cap_for_ollama_clients(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    configure(gateway, "ollama", fake_ollama, fake_openai, max_tokens=64)
    http = gateway.http()
    body = {"model": MODEL, "prompt": "x", "stream": False, "options": {"num_predict": 4096}}
    response = http.post("/api/generate", json=body)
    assert response.headers["x-llm-max-tokens-capped"] == "64"
    assert fake_ollama.bodies[-1]["options"]["num_predict"] == 64
    body["options"] = {"num_predict": 32}
    response = http.post("/api/generate", json=body)
    assert "x-llm-max-tokens-capped" not in response.headers
    assert fake_ollama.bodies[-1]["options"]["num_predict"] == 32


@pytest.mark.parametrize("kind", ["ollama", "openai"])
def test_logprobs_whole_and_streamed(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer, kind: str
) -> None:
    fake = configure(gateway, kind, fake_ollama, fake_openai)
    fake.configure(reply="Hello there")
    client = gateway.ollama()
    answer = client.chat(model=MODEL, messages=HI, logprobs=True, top_logprobs=1, stream=False)
    assert answer.logprobs is not None
    assert [e.token for e in answer.logprobs] == ["Hello", "there"]
    assert answer.logprobs[0].top_logprobs is not None
    parts = list(client.chat(model=MODEL, messages=HI, logprobs=True, stream=True))
    assert [e.token for p in parts for e in (p.logprobs or ())]
    if kind == "openai":
        assert (fake.bodies[-1]["logprobs"], fake.bodies[0]["top_logprobs"]) == (True, 1)
