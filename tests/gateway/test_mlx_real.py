"""Both protocols' official clients through the gateway to the REAL mlx_lm.server.

Facts of the tiny model (tests/fakes/make_tiny_mlx_model.py): one token per prompt byte, so
prompt_tokens == len(prompt.encode()); it never emits EOS, so completion_tokens == max_tokens
and the finish reason is "length"; temperature 0 is greedy (deterministic).
"""

from __future__ import annotations

import pytest

from tests.fakes.common import FakeServer
from tests.fakes.mlx_server import MLXServer
from tests.gateway.conftest import GatewayServer

pytestmark = pytest.mark.mlx

MODEL = "tiny-mlx"
PROMPT = "Grüße, 世界"
MESSAGES = [{"role": "user", "content": "Hi there"}]


@pytest.fixture
def on_mlx(gateway: GatewayServer, mlx_server: MLXServer) -> GatewayServer:
    gateway.add(MODEL, "mlx", mlx_server.url)
    return gateway


def test_openai_client_chat_and_stream_on_mlx(on_mlx: GatewayServer) -> None:
    client = on_mlx.openai()
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=MESSAGES, max_tokens=5, temperature=0
    )
    assert raw.headers["x-llm-backend"] == "mlx"
    whole = raw.parse()
    assert whole.model == MODEL
    assert whole.choices[0].finish_reason == "length"
    assert whole.usage is not None and whole.usage.completion_tokens == 5
    assert len(whole.choices[0].message.content or "") == 5

    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            max_tokens=5,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5


def test_openai_client_completions_on_mlx(on_mlx: GatewayServer) -> None:
    completion = on_mlx.openai().completions.create(
        model=MODEL, prompt=PROMPT, max_tokens=4, temperature=0
    )
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == len(PROMPT.encode())
    assert completion.usage.completion_tokens == 4
    assert completion.choices[0].finish_reason == "length"


def test_ollama_client_answered_by_mlx(on_mlx: GatewayServer) -> None:
    client = on_mlx.ollama()
    options = {"temperature": 0, "num_predict": 6}
    answer = client.generate(model=MODEL, prompt=PROMPT, options=options)
    assert answer.done_reason == "length"
    assert answer.prompt_eval_count == len(PROMPT.encode())
    assert answer.eval_count == 6
    assert answer.total_duration and answer.eval_duration
    assert answer.eval_duration <= answer.total_duration

    parts = list(client.generate(model=MODEL, prompt=PROMPT, options=options, stream=True))
    assert "".join(p.response or "" for p in parts) == answer.response
    assert parts[-1].done and parts[-1].done_reason == "length" and parts[-1].eval_count == 6

    chat = client.chat(model=MODEL, messages=MESSAGES, options=options)
    assert chat.message.role == "assistant" and len(chat.message.content or "") == 6
    assert chat.done_reason == "length"


async def test_async_clients_on_mlx(on_mlx: GatewayServer) -> None:
    async with on_mlx.async_openai() as client:
        completion = await client.chat.completions.create(
            model=MODEL,
            messages=MESSAGES,
            max_tokens=3,
            temperature=0,  # type: ignore[arg-type]
        )
    assert completion.usage is not None and completion.usage.completion_tokens == 3
    answer = await on_mlx.async_ollama().chat(
        model=MODEL, messages=MESSAGES, options={"num_predict": 3, "temperature": 0}
    )
    assert answer.eval_count == 3


def test_auto_prefers_mlx_while_it_is_up(
    gateway: GatewayServer, mlx_server: MLXServer, fake_ollama: FakeServer
) -> None:
    gateway.add(MODEL, "auto", mlx_server.url)
    raw = gateway.openai().chat.completions.with_raw_response.create(
        model=MODEL,
        messages=MESSAGES,
        max_tokens=2,  # type: ignore[arg-type]
    )
    assert raw.headers["x-llm-backend"] == "mlx"
    assert "x-llm-fallback-from" not in raw.headers
    assert fake_ollama.bodies == []
