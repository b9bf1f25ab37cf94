"""Shared pieces of the feature tests: a tool, its call, and a gateway config per backend type
(the mlx config points at the fake OpenAI server behaving as mlx_lm.server does)."""

from __future__ import annotations

import base64
from typing import Any

from tests.fakes.common import FakeServer
from tests.gateway.conftest import GatewayServer

MODEL = "phi3:mini"
TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
OTHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}
CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}
HI: list[Any] = [{"role": "user", "content": "hi"}]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).decode()
KINDS = ("ollama", "openai", "mlx")


def configure(
    gateway: GatewayServer,
    kind: str,
    fake_ollama: FakeServer,
    fake_openai: FakeServer,
    **fields: Any,
) -> FakeServer:
    """A config of backend type `kind` for MODEL; returns the fake that will answer."""
    if kind == "ollama":
        gateway.add(MODEL, "ollama", fake_ollama.url, **fields)
        return fake_ollama
    if kind == "mlx":
        fake_openai.configure(flavour="mlx")
    gateway.add(MODEL, kind, fake_openai.url, **fields)
    return fake_openai
