"""Features against the REAL mlx_lm.server: what it would silently ignore is refused with a
400 naming the field and `mlx`, `auto` sends such requests straight to Ollama, and what it
can honour (logprobs, n as several calls, sampling) works."""

from __future__ import annotations

from typing import Any

import ollama
import openai
import pytest

from tests.fakes.common import FakeServer
from tests.fakes.mlx_server import MLXServer
from tests.gateway.conftest import GatewayServer
from tests.gateway.features import PNG

pytestmark = pytest.mark.mlx

MODEL = "tiny-mlx"
HI: list[Any] = [{"role": "user", "content": "Hi there"}]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"response_format": {"type": "json_object"}}, "response_format"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "what?"},
                            {
                                "type": "image_url",
                                "image_url": {"url": f"data:image/png;base64,{PNG}"},
                            },
                        ],
                    }
                ]
            },
            "messages.0.images.0",
        ),
    ],
)
def test_openai_client_refusals_from_mlx(
    gateway: GatewayServer, mlx_server: MLXServer, extra: dict[str, Any], field: str
) -> None:
    gateway.add(MODEL, "mlx", mlx_server.url)
    with pytest.raises(openai.BadRequestError) as raised:
        gateway.openai().chat.completions.create(
            model=MODEL, **{"messages": HI, "max_tokens": 2, **extra}
        )
    assert raised.value.param == field
    assert raised.value.message.startswith(f"Error code: 400 - {field}: the mlx backend")


def test_ollama_client_refusal_from_mlx(gateway: GatewayServer, mlx_server: MLXServer) -> None:
    gateway.add(MODEL, "mlx", mlx_server.url)
    with pytest.raises(ollama.ResponseError) as raised:
        gateway.ollama().chat(model=MODEL, messages=HI, format="json", stream=False)
    assert raised.value.status_code == 400
    assert raised.value.error.startswith("format: the mlx backend")


def test_auto_sends_what_mlx_lacks_straight_to_ollama(
    gateway: GatewayServer, mlx_server: MLXServer, fake_ollama: FakeServer
) -> None:
    gateway.add(MODEL, "auto", mlx_server.url)
    client = gateway.openai()
    plain = client.chat.completions.with_raw_response.create(model=MODEL, messages=HI, max_tokens=2)
    assert plain.headers["x-llm-backend"] == "mlx"
    assert not fake_ollama.requests
    structured = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=HI, max_tokens=2, response_format={"type": "json_object"}
    )
    assert structured.headers["x-llm-backend"] == "ollama"
    assert "x-llm-fallback-from" not in structured.headers  # not a failure: a choice
    assert fake_ollama.bodies[-1]["format"] == "json"


def test_mlx_honours_logprobs_and_n(gateway: GatewayServer, mlx_server: MLXServer) -> None:
    gateway.add(MODEL, "mlx", mlx_server.url)
    completion = gateway.openai().chat.completions.create(
        model=MODEL, messages=HI, max_tokens=3, temperature=0, n=2, logprobs=True, top_logprobs=2
    )
    assert [c.index for c in completion.choices] == [0, 1]
    # Greedy decoding: both calls give the same text.
    assert completion.choices[0].message.content == completion.choices[1].message.content
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert len(logprobs.content) == 3
