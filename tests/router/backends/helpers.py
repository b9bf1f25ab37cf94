"""Small builders shared by the backend tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from llm_backends.router.types import BackendConfig, Chunk


def make_config(endpoint_url: str, backend_type: str, **overrides: Any) -> BackendConfig:
    values: dict[str, Any] = {
        "model_name": "phi3:mini",
        "backend_type": backend_type,
        "endpoint_url": endpoint_url,
        "timeout_seconds": 10.0,
    }
    values.update(overrides)
    return BackendConfig(**values)


async def collect(chunks: AsyncIterator[Chunk]) -> list[Chunk]:
    return [chunk async for chunk in chunks]


def text_of(chunks: list[Chunk]) -> str:
    return "".join(chunk.text for chunk in chunks)
