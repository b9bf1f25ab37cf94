"""`GET /metrics`: Prometheus counters move with requests, fallbacks, upstream errors and
breaker state; each app has its own registry."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.common import FakeServer
from tests.gateway.conftest import GatewayServer

MODEL = "phi3:mini"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def test_requests_and_latency_are_counted(gateway: GatewayServer, fake_ollama: FakeServer) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    before = gateway.metrics()
    http = gateway.http()
    assert http.post("/v1/chat/completions", json=CHAT).status_code == 200
    assert http.post("/v1/chat/completions", json={**CHAT, "stream": True}).status_code == 200
    assert http.post("/api/chat", json=CHAT).status_code == 200
    assert http.post("/v1/chat/completions", json={"model": MODEL}).status_code == 400
    after = gateway.metrics()

    ok = {"model": MODEL, "backend": "ollama", "status": "200"}
    name = "llm_gateway_requests_total"
    assert (
        value(after, name, **ok, protocol="openai") - value(before, name, **ok, protocol="openai")
        == 2
    )
    assert value(after, name, **ok, protocol="ollama") == 1
    assert value(after, name, model="", backend="", status="400", protocol="openai") == 1
    count = "llm_gateway_request_duration_seconds_count"
    assert value(after, count, model=MODEL, backend="ollama") == 3


def test_fallbacks_upstream_errors_and_breakers_are_counted(
    gateway: GatewayServer, fake_ollama: FakeServer, refused_url: str
) -> None:
    gateway.add(MODEL, "auto", refused_url)
    gateway.add("down", "openai", refused_url)
    http = gateway.http()
    assert http.post("/v1/chat/completions", json=CHAT).status_code == 200
    assert http.post("/api/generate", json={"model": "down", "prompt": "x"}).status_code == 502
    text = gateway.metrics()
    assert (
        value(
            text,
            "llm_gateway_fallbacks_total",
            model=MODEL,
            from_backend="mlx",
            to_backend="ollama",
        )
        == 1
    )
    assert (
        value(
            text,
            "llm_gateway_upstream_errors_total",
            model="down",
            backend="openai",
            error="backend_unavailable",
        )
        == 1
    )
    assert (
        value(
            text,
            "llm_gateway_requests_total",
            model="down",
            backend="openai",
            status="502",
            protocol="ollama",
        )
        == 1
    )
    # Two failures so far on the refused endpoint; the default threshold (3) opens it.
    assert value(text, "llm_gateway_breaker_open", endpoint=refused_url) == 0
    assert http.post("/api/generate", json={"model": "down", "prompt": "x"}).status_code == 502
    assert value(gateway.metrics(), "llm_gateway_breaker_open", endpoint=refused_url) == 1


def test_mid_stream_failures_count_as_upstream_errors(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    fake_ollama.configure(error_after=1)
    gateway.http().post("/api/chat", json=CHAT)
    text = gateway.metrics()
    assert (
        value(
            text,
            "llm_gateway_upstream_errors_total",
            model=MODEL,
            backend="ollama",
            error="stream_interrupted",
        )
        == 1
    )
    assert (
        value(
            text,
            "llm_gateway_requests_total",
            model=MODEL,
            backend="ollama",
            status="502",
            protocol="ollama",
        )
        == 1
    )


def test_each_app_has_its_own_registry(start_gateway, fake_ollama: FakeServer) -> None:  # type: ignore[no-untyped-def]
    first = start_gateway()
    second = start_gateway()
    first.add(MODEL, "ollama", fake_ollama.url)
    assert first.http().post("/api/chat", json=CHAT).status_code == 200
    assert (
        value(
            first.metrics(),
            "llm_gateway_requests_total",
            model=MODEL,
            backend="ollama",
            status="200",
            protocol="ollama",
        )
        == 1
    )
    assert "llm_gateway_requests_total{" not in second.metrics()
