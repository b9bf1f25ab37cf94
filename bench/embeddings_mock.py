"""Embedding answers of the instant mock backend: Ollama's `/api/embed` and the OpenAI
`/v1/embeddings`, with fixed vectors (a pure function of the request, no I/O)."""

from __future__ import annotations

from typing import Any

#: Length of the mock's vectors: a small real embedding model's (e.g. all-MiniLM: 384).
DIM = 384
_VECTOR = [round(0.001 * (i % 97), 3) for i in range(DIM)]

ROUTES = {"/api/embed", "/v1/embeddings"}


def _inputs(req: dict[str, Any]) -> list[Any]:
    value = req.get("input")
    if isinstance(value, list):
        return value
    return [value] if value else []


def embed_reply(path: str, req: dict[str, Any]) -> dict[str, Any]:
    items = _inputs(req)
    tokens = sum(len(str(item).split()) for item in items)
    if path == "/api/embed":
        return {
            "model": req.get("model"),
            "embeddings": [_VECTOR] * len(items),
            "total_duration": 1_000_000,
            "load_duration": 0,
            "prompt_eval_count": tokens,
        }
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _VECTOR} for i in range(len(items))
        ],
        "model": req.get("model"),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
