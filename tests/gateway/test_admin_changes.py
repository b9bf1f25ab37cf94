"""An Admin API write is visible to the very next gateway request in the same process,
although the router's cache TTL (60 s by default) has not run out."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event

from tests.fakes.common import FakeServer
from tests.gateway.conftest import GatewayServer

MODEL = "phi3:mini"


def backend_of(gateway: GatewayServer) -> str:
    response = gateway.http().post(
        "/api/generate", json={"model": MODEL, "prompt": "hi", "stream": False}
    )
    assert response.status_code == 200, response.text
    return response.headers["x-llm-backend"]


def test_put_toggle_and_delete_are_seen_by_the_next_request(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    assert gateway.server.settings.llm_router_cache_ttl >= 60
    # Cached as "no config": the default Ollama answers.
    assert backend_of(gateway) == "ollama"
    assert fake_ollama.bodies[-1]["model"] == MODEL

    created = gateway.add(MODEL, "openai", fake_openai.url)
    assert backend_of(gateway) == "openai"

    response = gateway.admin.put(
        f"/api/llm-backends/{created['id']}",
        json={"backend_type": "ollama", "endpoint_url": fake_ollama.url, "backend_model": "x:1"},
    )
    assert response.status_code == 200
    assert backend_of(gateway) == "ollama"
    assert fake_ollama.bodies[-1]["model"] == "x:1"

    assert gateway.admin.post(f"/api/llm-backends/{created['id']}/toggle").status_code == 200
    backend_of(gateway)
    assert fake_ollama.bodies[-1]["model"] == MODEL  # disabled: the default config

    assert gateway.admin.post(f"/api/llm-backends/{created['id']}/toggle").status_code == 200
    backend_of(gateway)
    assert fake_ollama.bodies[-1]["model"] == "x:1"

    assert gateway.admin.delete(f"/api/llm-backends/{created['id']}").status_code == 200
    backend_of(gateway)
    assert fake_ollama.bodies[-1]["model"] == MODEL


def test_a_rename_frees_the_old_name_at_once(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    created = gateway.add(MODEL, "openai", fake_openai.url)
    assert backend_of(gateway) == "openai"
    response = gateway.admin.put(
        f"/api/llm-backends/{created['id']}", json={"model_name": "renamed"}
    )
    assert response.status_code == 200
    assert backend_of(gateway) == "ollama"


def test_listings_follow_writes(gateway: GatewayServer, fake_ollama: FakeServer) -> None:
    fake_ollama.configure(models=[])  # the default Ollama adds nothing to the lists
    assert gateway.ollama().list().models == []
    created = gateway.add(MODEL, "ollama", fake_ollama.url)
    assert [m.model for m in gateway.ollama().list().models] == [MODEL]
    gateway.admin.post(f"/api/llm-backends/{created['id']}/toggle")
    assert [m.id for m in gateway.openai().models.list().data] == []


def test_generation_requests_do_not_query_the_store_per_request(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    """One lookup per model per cache fill; then none until the TTL or an Admin API write."""
    gateway.add(MODEL, "ollama", fake_ollama.url)
    engine = gateway.server.thread.config.app.state.engine
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):  # not the batched stats UPDATEs
            statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        for _ in range(5):
            backend_of(gateway)
        assert len(statements) == 1 and "llm_backends" in statements[0]
        backend_id = gateway.admin.get("/api/llm-backends").json()[0]["id"]
        gateway.admin.post(f"/api/llm-backends/{backend_id}/toggle")
        lookups_before = len(statements)
        backend_of(gateway)
        backend_of(gateway)
        assert len(statements) == lookups_before + 1  # re-read once after the write
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", count)
