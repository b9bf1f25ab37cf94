"""The audit log: every write leaves exactly one entry (actor, action, diff), a failed write
none, and the log reads back filtered and paginated (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm_backends.admin.auth import Scope
from llm_backends.store import audit, tokens
from llm_backends.store import backends as store
from llm_backends.store.audit import Actor
from tests.conftest import LiveServer

PHI = {
    "model_name": "phi3:mini",
    "backend_type": "ollama",
    "endpoint_url": "http://localhost:11434",
}
METRICS = {
    "stats": [{"model_name": "phi3:mini", "requests": 1, "errors": 0, "latency_ms_sum": 5.0}]
}


def entries(client: httpx.Client, **params: Any) -> dict[str, Any]:
    response = client.get("/api/audit", params=params)
    assert response.status_code == 200, response.text
    return response.json()


class Ledger:
    """Checks that each step adds exactly one entry (or none) and returns it."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client
        self.total = entries(client)["total"]

    def one(self) -> dict[str, Any]:
        page = entries(self.client)
        assert page["total"] == self.total + 1, page
        self.total += 1
        return page["items"][0]

    def none(self) -> None:
        assert entries(self.client)["total"] == self.total


@pytest.fixture
async def writer(live_server: LiveServer, sessions: async_sessionmaker[AsyncSession]) -> tuple:
    async with sessions() as session:
        row, plain = await tokens.create_token(session, "ops", [Scope.WRITE])
    return row.id, live_server.client(plain)


def test_every_config_write_leaves_one_entry_with_actor_and_diff(
    live_server: LiveServer, writer: tuple[int, httpx.Client]
) -> None:
    token_id, client = writer
    ledger = Ledger(live_server.admin)

    created = client.post("/api/llm-backends", json={**PHI, "description": "v1"}).json()
    entry = ledger.one()
    assert entry["action"] == "backend.create"
    assert entry["actor"] == {"token_id": token_id, "name": "ops"}
    assert entry["target"]["type"] == "backend" and entry["target"]["id"] == created["id"]
    assert entry["target"]["model_name"] == "phi3:mini"
    assert entry["changes"]["endpoint_url"] == {"before": None, "after": PHI["endpoint_url"]}
    assert entry["changes"]["description"] == {"before": None, "after": "v1"}
    assert entry["at"].endswith("Z")

    backend = f"/api/llm-backends/{created['id']}"
    assert client.put(backend, json={"description": "v2", "max_tokens": 2048}).status_code == 200
    entry = ledger.one()
    assert entry["action"] == "backend.update"
    # Only what changed: max_tokens was already 2048.
    assert entry["changes"] == {"description": {"before": "v1", "after": "v2"}}

    assert client.post(f"{backend}/toggle").status_code == 200
    entry = ledger.one()
    assert entry["action"] == "backend.toggle"
    assert entry["changes"] == {"enabled": {"before": True, "after": False}}

    # The bootstrap token is named as such, without a token id.
    assert live_server.admin.delete(backend).status_code == 200
    entry = ledger.one()
    assert entry["action"] == "backend.delete"
    assert entry["actor"] == {"token_id": None, "name": "bootstrap"}
    assert entry["changes"]["model_name"] == {"before": "phi3:mini", "after": None}
    assert entry["changes"]["enabled"] == {"before": False, "after": None}

    # Stats reports are not writes of the config.
    assert live_server.admin.post("/api/llm-backends/metrics", json=METRICS).status_code == 200
    ledger.none()


def test_token_writes_are_audited_without_the_token(live_server: LiveServer) -> None:
    ledger = Ledger(live_server.admin)
    made = live_server.admin.post(
        "/api/tokens", json={"name": "dash", "scopes": ["llm_backends:read"]}
    ).json()
    entry = ledger.one()
    assert entry["action"] == "token.create"
    target = {"type": "token", "id": made["id"], "model_name": None, "name": "dash"}
    assert entry["target"] == target
    assert entry["changes"]["scopes"] == {"before": None, "after": ["llm_backends:read"]}
    assert made["token"] not in str(entry)

    assert live_server.admin.delete(f"/api/tokens/{made['id']}").status_code == 200
    entry = ledger.one()
    assert entry["action"] == "token.revoke"
    assert entry["changes"]["revoked_at"]["before"] is None


def test_failed_writes_leave_no_entry(
    live_server: LiveServer, writer: tuple[int, httpx.Client]
) -> None:
    _, client = writer
    first = client.post("/api/llm-backends", json=PHI).json()
    other = client.post("/api/llm-backends", json={**PHI, "model_name": "other"}).json()
    ledger = Ledger(live_server.admin)
    reader = live_server.admin.post(
        "/api/tokens", json={"name": "r", "scopes": ["llm_backends:read"]}
    ).json()
    ledger.one()
    failures = [
        (client.post("/api/llm-backends", json=PHI), 409),
        (client.put(f"/api/llm-backends/{other['id']}", json={"model_name": "phi3:mini"}), 409),
        (client.put("/api/llm-backends/999", json={"description": "x"}), 404),
        (client.post("/api/llm-backends/999/toggle"), 404),
        (client.delete("/api/llm-backends/999"), 404),
        (client.post("/api/llm-backends", json={**PHI, "max_tokens": -1}), 422),
        (live_server.client(reader["token"]).delete(f"/api/llm-backends/{first['id']}"), 403),
        (live_server.admin.delete("/api/tokens/999"), 404),
        (client.post("/api/tokens", json={"name": "x", "scopes": ["llm_backends:read"]}), 403),
    ]
    for response, expected in failures:
        assert response.status_code == expected, response.text
    ledger.none()


async def test_the_entry_is_in_the_same_transaction_as_the_write(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the entry cannot be written, neither is the change."""
    async with sessions() as session:
        row = await store.create_backend(session, {**PHI}, actor=Actor("t"))

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("audit log unavailable")

    monkeypatch.setattr(audit, "record", broken)
    async with sessions() as session:
        with pytest.raises(RuntimeError):
            await store.update_backend(session, row.id, {"description": "lost"}, actor=Actor("t"))
    async with sessions() as session:
        with pytest.raises(RuntimeError):
            await store.delete_backend(session, row.id, actor=Actor("t"))
    async with sessions() as session:
        with pytest.raises(RuntimeError):
            await store.create_backend(session, {**PHI, "model_name": "b"}, actor=Actor("t"))
    async with sessions() as session:
        kept = await store.get_backend(session, row.id)
        assert kept is not None and kept.description is None
        assert [b.model_name for b in await store.list_backends(session)] == ["phi3:mini"]
        _, total = await audit.list_entries(session, audit.AuditFilter(), limit=10, offset=0)
    assert total == 1


def test_filters_pagination_and_history(
    live_server: LiveServer, writer: tuple[int, httpx.Client]
) -> None:
    _, client = writer
    admin = live_server.admin
    start = datetime.now(UTC)  # after the fixture's token.create
    phi = client.post("/api/llm-backends", json=PHI).json()
    other = admin.post("/api/llm-backends", json={**PHI, "model_name": "other"}).json()
    for n in range(3):
        client.put(f"/api/llm-backends/{phi['id']}", json={"priority": n + 1})
    admin.post(f"/api/llm-backends/{other['id']}/toggle")

    assert entries(admin)["total"] == 7
    by_model = entries(admin, model="phi3:mini")
    assert by_model["total"] == 4
    assert {item["target"]["model_name"] for item in by_model["items"]} == {"phi3:mini"}
    assert entries(admin, actor="ops")["total"] == 4
    assert entries(admin, actor="bootstrap")["total"] == 2
    assert entries(admin, since=start.isoformat())["total"] == 6
    assert entries(admin, until=start.isoformat())["total"] == 1
    assert entries(admin, until=start.isoformat())["items"][0]["action"] == "token.create"

    page = entries(admin, limit=2, offset=1)
    assert (page["limit"], page["offset"], page["total"], len(page["items"])) == (2, 1, 7, 2)
    everything = entries(admin, limit=500)["items"]
    assert page["items"] == everything[1:3]
    ids = [item["id"] for item in everything]
    assert ids == sorted(ids, reverse=True)

    history = admin.get(f"/api/llm-backends/{phi['id']}/history")
    assert history.status_code == 200
    actions = [item["action"] for item in history.json()]
    assert actions == ["backend.update"] * 3 + ["backend.create"]
    assert history.json()[0]["changes"] == {"priority": {"before": 2, "after": 3}}

    # History outlives the config; an id that never existed is a 404.
    admin.delete(f"/api/llm-backends/{phi['id']}")
    assert admin.get(f"/api/llm-backends/{phi['id']}/history").json()[0]["action"] == (
        "backend.delete"
    )
    assert admin.get("/api/llm-backends/999/history").status_code == 404


def test_reading_the_log_needs_read_permission(live_server: LiveServer) -> None:
    assert live_server.client().get("/api/audit").status_code == 401
    metrics = live_server.admin.post(
        "/api/tokens", json={"name": "m", "scopes": ["llm_backends:metrics"]}
    ).json()["token"]
    assert live_server.client(metrics).get("/api/audit").status_code == 403
    assert live_server.client(metrics).get("/api/llm-backends/1/history").status_code == 403
    assert live_server.admin.get("/api/audit", params={"limit": 0}).status_code == 422


def test_concurrent_updates_leave_a_consistent_chain_of_diffs(live_server: LiveServer) -> None:
    """Each update's "before" is the previous one's "after": the row is locked before it is
    read, so no two writers see the same old value (SQLite and PostgreSQL)."""
    import concurrent.futures

    backend = live_server.admin.post("/api/llm-backends", json={**PHI, "priority": 0}).json()
    path = f"/api/llm-backends/{backend['id']}"

    def put(n: int) -> int:
        with live_server.client(live_server.token) as client:
            return client.put(path, json={"priority": n}).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(put, range(1, 21)))
    assert statuses == [200] * 20
    history = live_server.admin.get(f"{path}/history").json()
    updates = list(reversed([e for e in history if e["action"] == "backend.update"]))
    assert len(updates) == 20
    chain = [0] + [e["changes"]["priority"]["after"] for e in updates]
    assert [e["changes"]["priority"]["before"] for e in updates] == chain[:-1]
    assert live_server.admin.get(path).json()["priority"] == chain[-1]
