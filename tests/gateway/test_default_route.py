"""A model without an enabled config goes to the default Ollama, and the answer says so:
the `x-llm-default-route: true` header, and in an error, the message."""

from __future__ import annotations

import pytest

from tests.fakes.common import FakeServer
from tests.gateway.conftest import GatewayServer

CHAT = {"messages": [{"role": "user", "content": "hi"}]}
HEADER = "x-llm-default-route"


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/v1/chat/completions", {}),
        ("/v1/chat/completions", {"stream": True}),
        ("/api/chat", {"stream": False}),
        ("/api/chat", {}),
    ],
)
def test_answers_say_whether_the_default_route_was_taken(
    gateway: GatewayServer, fake_ollama: FakeServer, path: str, extra: dict
) -> None:
    gateway.add("configured", "ollama", fake_ollama.url)
    gateway.add("off", "ollama", fake_ollama.url, enabled=False)
    http = gateway.http()
    for model, default in (("configured", False), ("typo", True), ("off", True)):
        response = http.post(path, json={"model": model, **CHAT, **extra})
        assert response.status_code == 200, response.text
        assert response.headers.get(HEADER) == ("true" if default else None), model


def test_a_failed_default_route_says_no_config_exists(start_gateway, refused_url: str) -> None:  # type: ignore[no-untyped-def]
    gateway = start_gateway(ollama_url=refused_url)
    response = gateway.http().post("/api/chat", json={"model": "phi3:mini", **CHAT})
    assert response.status_code == 502
    assert response.headers[HEADER] == "true"
    assert (
        "model 'phi3:mini' has no enabled config (none, or disabled), so it was sent to the "
        f"default Ollama at {refused_url} (OLLAMA_URL)"
    ) in response.json()["error"]
    response = gateway.http().post("/v1/chat/completions", json={"model": "x", **CHAT})
    assert response.status_code == 502 and response.headers[HEADER] == "true"
    assert "has no enabled config" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/embeddings", {"input": ["hi"]}),
        ("/api/embed", {"input": "hi"}),
        ("/api/embeddings", {"prompt": "hi"}),
    ],
)
def test_embeddings_answers_say_the_route_and_the_endpoint(
    gateway: GatewayServer, fake_ollama: FakeServer, path: str, body: dict
) -> None:
    gateway.add("configured", "ollama", fake_ollama.url)
    http = gateway.http()
    for model, default in (("configured", False), ("typo", True)):
        response = http.post(path, json={"model": model, **body})
        assert response.status_code == 200, response.text
        assert response.headers.get(HEADER) == ("true" if default else None), model
        assert response.headers["x-llm-endpoint"] == fake_ollama.url


def test_a_failed_default_embeddings_route_says_no_config_exists(
    start_gateway, refused_url: str
) -> None:  # type: ignore[no-untyped-def]
    gateway = start_gateway(ollama_url=refused_url)
    response = gateway.http().post("/api/embed", json={"model": "nomic", "input": "hi"})
    assert response.status_code == 502
    assert response.headers[HEADER] == "true"
    assert (
        "model 'nomic' has no enabled config (none, or disabled), so it was sent to the "
        f"default Ollama at {refused_url} (OLLAMA_URL)"
    ) in response.json()["error"]
    response = gateway.http().post("/v1/embeddings", json={"model": "x", "input": "hi"})
    assert response.status_code == 502 and response.headers[HEADER] == "true"
    assert "has no enabled config" in response.json()["error"]["message"]
