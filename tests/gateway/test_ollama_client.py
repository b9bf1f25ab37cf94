"""The official `ollama` package against the gateway: list, show, generate, chat (stream and
not, sync and async), answered by OpenAI-protocol backends (translation OpenAI -> Ollama)."""

from __future__ import annotations

import httpx
import ollama
import pytest

from tests.fakes.common import FakeServer
from tests.gateway.conftest import GatewayServer

MODEL = "qwen:7b"
REPLY = "Hello from the fake server."


def test_generate_answered_by_openai_backend_is_translated(
    gateway: GatewayServer, fake_openai: FakeServer
) -> None:
    gateway.add(MODEL, "openai", fake_openai.url)
    answer = gateway.ollama().generate(
        model=MODEL,
        prompt="Why is the sky blue?",
        system="Be brief.",
        options={"temperature": 0, "num_predict": 9, "stop": ["."]},
    )
    assert answer.model == MODEL
    assert answer.response == REPLY
    assert answer.done is True and answer.done_reason == "stop"
    # usage became Ollama's counters; durations are nanoseconds, consistent with each other.
    assert (answer.prompt_eval_count, answer.eval_count) == (5, 3)
    assert answer.total_duration and answer.total_duration > 0
    assert answer.eval_duration and 0 < answer.eval_duration <= answer.total_duration
    assert answer.created_at and answer.created_at.endswith("Z")
    sent = fake_openai.bodies[-1]
    assert sent["prompt"] == "Be brief.\n\nWhy is the sky blue?"
    assert (sent["temperature"], sent["max_tokens"], sent["stop"]) == (0, 9, ["."])


def test_length_becomes_done_reason_length(gateway: GatewayServer, fake_openai: FakeServer) -> None:
    gateway.add(MODEL, "openai", fake_openai.url)
    fake_openai.configure(finish_reason="length")
    answer = gateway.ollama().chat(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert answer.done_reason == "length"


def test_generate_stream(gateway: GatewayServer, fake_openai: FakeServer) -> None:
    gateway.add(MODEL, "openai", fake_openai.url)
    parts = list(gateway.ollama().generate(model=MODEL, prompt="hi", stream=True))
    assert "".join(p.response or "" for p in parts) == REPLY
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    final = parts[-1]
    assert final.done_reason == "stop"
    assert (final.prompt_eval_count, final.eval_count) == (5, 3)
    assert final.total_duration and final.eval_duration
    assert final.eval_duration <= final.total_duration


def test_chat_and_chat_stream(gateway: GatewayServer, fake_openai: FakeServer) -> None:
    gateway.add(MODEL, "openai", fake_openai.url)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
    answer = gateway.ollama().chat(model=MODEL, messages=messages)
    assert answer.message.role == "assistant"
    assert answer.message.content == REPLY
    assert fake_openai.bodies[-1]["messages"] == messages
    parts = list(gateway.ollama().chat(model=MODEL, messages=messages, stream=True))
    assert "".join(p.message.content or "" for p in parts) == REPLY
    assert parts[-1].done is True and parts[-1].eval_count == 3


def test_curl_style_request_streams_ndjson_by_default(
    gateway: GatewayServer, fake_openai: FakeServer
) -> None:
    """Ollama streams unless `"stream": false`; the gateway does the same."""
    gateway.add(MODEL, "openai", fake_openai.url)
    response = gateway.http().post("/api/generate", json={"model": MODEL, "prompt": "hi"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["x-llm-backend"] == "openai"
    lines = response.text.splitlines()
    assert len(lines) >= 2
    assert '"done":true' in lines[-1]


def test_version(gateway: GatewayServer) -> None:
    response = gateway.http().get("/api/version")
    assert response.status_code == 200
    assert isinstance(response.json()["version"], str)


def test_unconfigured_model_is_answered_by_the_default_ollama(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    answer = gateway.ollama().generate(model="llama3.2:latest", prompt="hi")
    assert answer.response == REPLY
    assert fake_ollama.bodies[-1]["model"] == "llama3.2:latest"
    assert fake_ollama.requests[-1].path == "/api/generate"


def test_ollama_to_ollama_keeps_the_backends_counters(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    answer = gateway.ollama().generate(model=MODEL, prompt="hi")
    assert (answer.prompt_eval_count, answer.eval_count) == (5, 3)
    # The fake reports 20 ms per token: the backend's own generation time is kept.
    assert answer.eval_duration == pytest.approx(3 * 20_000_000, abs=1)


@pytest.mark.parametrize("endpoint", ["generate", "chat"])
def test_empty_prompt_only_loads_the_model(
    gateway: GatewayServer, fake_ollama: FakeServer, endpoint: str
) -> None:
    client = gateway.ollama()
    answer = client.generate(model=MODEL) if endpoint == "generate" else client.chat(model=MODEL)
    assert answer.done is True and answer.done_reason == "load"
    assert fake_ollama.bodies == []


async def test_async_client(gateway: GatewayServer, fake_openai: FakeServer) -> None:
    gateway.add(MODEL, "openai", fake_openai.url)
    client = gateway.async_ollama()
    answer = await client.chat(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert answer.message.content == REPLY
    parts = [p async for p in await client.generate(model=MODEL, prompt="hi", stream=True)]
    assert "".join(p.response or "" for p in parts) == REPLY
    assert (await client.list()).models[0].model == MODEL


def test_client_headers_reach_the_gateway(gateway: GatewayServer, fake_openai: FakeServer) -> None:
    """The ollama client's `headers=` is how a token is sent when auth is on (see test_auth)."""
    gateway.add(MODEL, "openai", fake_openai.url)
    client = gateway.ollama(headers={"Authorization": "Bearer whatever"})
    assert client.generate(model=MODEL, prompt="hi").response == REPLY


def test_connection_error_is_the_clients_own_when_nothing_listens(refused_url: str) -> None:
    """Sanity check of the client itself: what it raises when no gateway is there."""
    with pytest.raises((ConnectionError, httpx.ConnectError)):
        ollama.Client(host=refused_url).list()
