"""The embeddings scenario: sequential embedding requests (8 short texts, 384-dim vectors)
straight to the instant mock, and through llm-backends in each protocol pairing:

- `openai_to_openai`: `/v1/embeddings` forwarded untouched to an OpenAI server;
- `openai_to_ollama`: `/v1/embeddings` translated to Ollama's `/api/embed` (floats, and base64
  as the official clients ask by default);
- `ollama_to_ollama`: `/api/embed` forwarded to Ollama.

Medians and p99 in ms, and what the gateway adds over the direct call.
"""

from __future__ import annotations

import statistics
from typing import Any

from bench.targets import Gateway, Http, Mocks

TEXTS = [f"document number {i} about the weather in some city" for i in range(8)]


def _timed(port: int, path: str, body: dict[str, Any], headers: dict[str, str], n: int) -> dict:
    client = Http(port, timeout=30)
    latencies: list[float] = []
    statuses: set[int] = set()
    try:
        for _ in range(n):
            reply = client.request("POST", path, body, headers)
            latencies.append(reply.seconds * 1000)
            statuses.add(reply.status)
    finally:
        client.close()
    latencies.sort()
    return {
        "median_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 3),
        "statuses": sorted(statuses),
    }


def scenario_embeddings(gw: Gateway, mocks: Mocks, requests: int = 300) -> dict[str, Any]:
    """Sequential requests (one client): the gateway's added latency per embedding call."""
    direct_port = mocks.main.port
    out: dict[str, Any] = {
        "direct_openai": _timed(
            direct_port, "/v1/embeddings", {"model": "m", "input": TEXTS}, {}, requests
        ),
        "direct_ollama": _timed(
            direct_port, "/api/embed", {"model": "m", "input": TEXTS}, {}, requests
        ),
    }
    cases = {
        "openai_to_openai": ("/v1/embeddings", "bench-openai", {}, "direct_openai"),
        "openai_to_ollama": ("/v1/embeddings", "bench-ollama", {}, "direct_ollama"),
        "openai_to_ollama_base64": (
            "/v1/embeddings",
            "bench-ollama",
            {"encoding_format": "base64"},
            "direct_ollama",
        ),
        "ollama_to_ollama": ("/api/embed", "bench-ollama", {}, "direct_ollama"),
    }
    for name, (path, model, extra, direct) in cases.items():
        body = {"model": model, "input": TEXTS, **extra}
        result = _timed(gw.port, path, body, gw.headers, requests)
        result["added_ms"] = round(result["median_ms"] - out[direct]["median_ms"], 3)
        out[name] = result
    return out
