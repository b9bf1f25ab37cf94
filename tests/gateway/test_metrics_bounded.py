"""`/metrics` has a ceiling whatever clients send: 10,000 requests for random model names
add no series past it, and a real server process's memory stays flat. Also the new metrics:
time to first token, token counters, process metrics."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from llm_backends.gateway.errors import Protocol
from llm_backends.gateway.metrics import GatewayMetrics
from tests.fakes.common import FakeServer
from tests.fakes.served import serve_process
from tests.gateway.conftest import GatewayServer
from tests.gateway.test_metrics import value

CHAT = {"messages": [{"role": "user", "content": "hi"}], "stream": False}


def gateway_series(text: str) -> set[tuple[str, frozenset[tuple[str, str]]]]:
    return {
        (sample.name, frozenset(sample.labels.items()))
        for family in text_string_to_metric_families(text)
        if family.name.startswith("llm_gateway_")
        for sample in family.samples
    }


def test_only_configured_models_get_a_label_of_their_own() -> None:
    configured = {"phi3:mini", "llama3.1:8b"}
    metrics = GatewayMetrics(dict, configured=configured.__contains__)
    for _ in range(10_000):
        metrics.request(Protocol.OLLAMA, uuid.uuid4().hex, "ollama", "200", 0.01, 5, 7)
        metrics.first_token(uuid.uuid4().hex, "ollama", 0.01)
    for model in configured:
        metrics.request(Protocol.OPENAI, model, "openai", "200", 0.01)
    text = metrics.exposition().decode()
    models = {dict(labels).get("model") for _, labels in gateway_series(text)}
    assert models == {"other", "phi3:mini", "llama3.1:8b"}
    assert value(text, "llm_gateway_prompt_tokens_total", model="other", backend="ollama") == 50_000
    count = "llm_gateway_time_to_first_token_seconds_count"
    assert value(text, count, model="other", backend="ollama") == 10_000


def test_the_cap_holds_even_for_configured_models() -> None:
    metrics = GatewayMetrics(dict, configured=lambda _model: True, max_models=3)
    for index in range(10):
        metrics.request(Protocol.OLLAMA, f"m{index}", "ollama", "200", 0.01)
    models = {dict(labels)["model"] for _, labels in gateway_series(metrics.exposition().decode())}
    assert models == {"m0", "m1", "m2", "other"}


def test_tokens_first_token_and_process_metrics(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    gateway.add("phi3:mini", "ollama", fake_ollama.url)
    http = gateway.http()
    assert http.post("/api/chat", json={"model": "phi3:mini", **CHAT}).status_code == 200
    streamed = http.post("/api/chat", json={"model": "phi3:mini", **CHAT, "stream": True})
    assert streamed.status_code == 200
    text = gateway.metrics()
    labels = {"model": "phi3:mini", "backend": "ollama"}
    # The fake reports 5 prompt tokens and one completion token per piece (3 pieces).
    assert value(text, "llm_gateway_prompt_tokens_total", **labels) == 10
    assert value(text, "llm_gateway_completion_tokens_total", **labels) == 6
    assert value(text, "llm_gateway_time_to_first_token_seconds_count", **labels) == 1
    assert value(text, "process_resident_memory_bytes") > 0
    assert value(text, "process_open_fds") > 0
    assert "python_info{" in text and "python_gc_collections_total{" in text


async def _send(url: str, models: list[str], concurrency: int = 16) -> None:
    queue = list(models)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def worker() -> None:
            while queue:
                model = queue.pop()
                response = await client.post("/api/chat", json={"model": model, **CHAT})
                assert response.status_code == 200, response.text

        await asyncio.gather(*(worker() for _ in range(concurrency)))


def test_10000_random_model_names_add_no_series_and_no_memory(
    fake_ollama: FakeServer, tmp_path: Path
) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'metrics.db'}",
        "OLLAMA_URL": fake_ollama.url,
        "LOG_LEVEL": "INFO",
    }
    with serve_process(env) as server:
        # Warm up past the route cache's bound (4096 entries), then measure.
        asyncio.run(_send(server.url, [uuid.uuid4().hex for _ in range(5_000)]))
        before = httpx.get(f"{server.url}/metrics").text
        asyncio.run(_send(server.url, [uuid.uuid4().hex for _ in range(5_000)]))
        after = httpx.get(f"{server.url}/metrics").text
    assert gateway_series(after) == gateway_series(before)
    models = {dict(labels).get("model") for _, labels in gateway_series(after)} - {None}
    assert models == {"other"}
    assert value(after, "llm_gateway_requests_total", **_ok()) == 10_000
    grown = value(after, "process_resident_memory_bytes") - value(
        before, "process_resident_memory_bytes"
    )
    assert grown < 4 * 1024 * 1024, f"RSS grew by {grown / 1e6:.1f} MB over 5,000 requests"


def _ok() -> dict[str, str]:
    return {"model": "other", "backend": "ollama", "status": "200", "protocol": "ollama"}
