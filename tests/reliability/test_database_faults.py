"""PostgreSQL going away mid-run: clear 503s, no half-applied writes, recovery without restart.

The database is cut through a TCP proxy (every connection dropped, the port closed), which is
what the app sees when PostgreSQL stops, without stopping the server other tests share.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from tests.conftest import LiveServer, server_starter
from tests.fakes.common import FakeServer
from tests.fakes.tcp_proxy import TcpProxy, tcp_proxy

PHI = {
    "model_name": "phi3:mini",
    "backend_type": "ollama",
    "endpoint_url": "http://localhost:11434",
}


@pytest.fixture
def proxied_postgres(postgres_database: str) -> Iterator[tuple[TcpProxy, str]]:
    """The test session's PostgreSQL database, reached through a proxy the test can cut."""
    parts = urlsplit(postgres_database)
    with tcp_proxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        proxied = postgres_database.replace(parts.netloc.split("@")[-1], f"127.0.0.1:{proxy.port}")
        yield proxy, proxied


@pytest.fixture
def server_on_proxied_postgres(
    proxied_postgres: tuple[TcpProxy, str],
) -> Iterator[tuple[TcpProxy, LiveServer]]:
    proxy, url = proxied_postgres
    with server_starter(url) as start:
        server = start(db_timeout_seconds=2)
        for row in server.admin.get("/api/llm-backends").json():
            server.admin.delete(f"/api/llm-backends/{row['id']}")
        yield proxy, server


def test_admin_api_answers_503_while_the_database_is_down_and_recovers(
    server_on_proxied_postgres: tuple[TcpProxy, LiveServer],
) -> None:
    proxy, server = server_on_proxied_postgres
    admin = server.admin
    created = admin.post("/api/llm-backends", json=PHI).json()

    proxy.cut()
    calls = {
        "list": lambda: admin.get("/api/llm-backends"),
        "get": lambda: admin.get(f"/api/llm-backends/{created['id']}"),
        "lookup": lambda: server.client().get("/api/llm-backends/model/phi3:mini"),
        "create": lambda: admin.post("/api/llm-backends", json={**PHI, "model_name": "outage"}),
        "update": lambda: admin.put(f"/api/llm-backends/{created['id']}", json={"enabled": False}),
        "toggle": lambda: admin.post(f"/api/llm-backends/{created['id']}/toggle"),
        "delete": lambda: admin.delete(f"/api/llm-backends/{created['id']}"),
        "ready": lambda: server.client().get("/ready"),
    }
    for name, call in calls.items():
        response = call()
        assert response.status_code == 503, f"{name}: {response.status_code} {response.text}"
        assert response.json()["detail"].startswith("Database unavailable"), name
        assert "postgresql://" not in response.text
    assert server.client().get("/health").status_code == 200  # liveness is not readiness

    proxy.restore()
    assert server.client().get("/ready").status_code == 200
    assert admin.get(f"/api/llm-backends/{created['id']}").json() == created  # nothing half-applied
    assert server.client().get("/api/llm-backends/model/outage").status_code == 404
    assert admin.post("/api/llm-backends", json={**PHI, "model_name": "after"}).status_code == 201


def test_gateway_keeps_routing_known_models_while_the_database_is_down(
    server_on_proxied_postgres: tuple[TcpProxy, LiveServer], fake_ollama: FakeServer
) -> None:
    proxy, server = server_on_proxied_postgres
    created = server.admin.post(
        "/api/llm-backends", json={**PHI, "endpoint_url": fake_ollama.url}
    ).json()
    chat = {"model": "phi3:mini", "messages": [{"role": "user", "content": "hi"}]}
    gateway = server.client()
    assert gateway.post("/v1/chat/completions", json=chat).status_code == 200  # config cached

    proxy.cut()
    for _ in range(3):
        answered = gateway.post("/v1/chat/completions", json=chat)
        assert answered.status_code == 200, answered.text
        assert answered.headers["x-llm-backend"] == "ollama"
        ollama_style = gateway.post("/api/chat", json={**chat, "stream": False})
        assert ollama_style.status_code == 200, ollama_style.text
    assert (
        server.admin.put(f"/api/llm-backends/{created['id']}", json={"max_tokens": 7}).status_code
        == 503
    )

    proxy.restore()
    assert server.client().get("/ready").status_code == 200
    assert (
        server.admin.put(f"/api/llm-backends/{created['id']}", json={"max_tokens": 7}).status_code
        == 200
    )
    gateway.post("/v1/chat/completions", json=chat)
    assert fake_ollama.bodies[-1]["options"]["num_predict"] == 7  # the write reached the gateway
