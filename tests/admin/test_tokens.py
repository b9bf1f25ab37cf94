"""Tokens over HTTP: list, create (shown once), revoke behind `tokens:manage`, no escalation,
and `whoami` for any valid token."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm_backends.store import tokens
from tests.conftest import LiveServer

ALL = ["llm_backends:read", "llm_backends:write", "llm_backends:metrics", "llm:generate",
       "tokens:manage", "llm_backends:secrets"]  # fmt: skip


def make(server: LiveServer, name: str, scopes: list[str], by: httpx.Client | None = None):
    return (by or server.admin).post("/api/tokens", json={"name": name, "scopes": scopes})


def test_create_list_revoke_round_trip(
    live_server: LiveServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    created = make(live_server, "dashboards", ["llm_backends:read"])
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["token"].startswith("llmb_") and body["scopes"] == ["llm_backends:read"]
    assert body["active"] is True and body["revoked_at"] is None
    new = live_server.client(body["token"])
    assert new.get("/api/llm-backends").status_code == 200

    listed = live_server.admin.get("/api/tokens").json()
    assert [(t["id"], t["name"], t["active"]) for t in listed] == [(body["id"], "dashboards", True)]
    assert "token" not in listed[0] and body["token"] not in str(listed)

    revoked = live_server.admin.delete(f"/api/tokens/{body['id']}")
    assert revoked.json() == {"message": "Token revoked", "id": body["id"]}
    assert new.get("/api/llm-backends").status_code == 401  # at once
    assert live_server.admin.get("/api/tokens").json()[0]["active"] is False
    assert live_server.admin.delete(f"/api/tokens/{body['id']}").status_code == 404


@pytest.mark.parametrize(
    ("holder", "asked", "status"),
    [
        # tokens:manage alone can hand out only tokens:manage
        (["tokens:manage"], ["llm_backends:read"], 403),
        (["tokens:manage"], ["tokens:manage"], 201),
        # write implies read and metrics: those may be granted, secrets and generate may not
        (["tokens:manage", "llm_backends:write"], ["llm_backends:read"], 201),
        (["tokens:manage", "llm_backends:write"], ["llm_backends:metrics"], 201),
        (["tokens:manage", "llm_backends:write"], ["llm_backends:write"], 201),
        (["tokens:manage", "llm_backends:write"], ["llm_backends:secrets"], 403),
        (["tokens:manage", "llm_backends:read"], ["llm_backends:write"], 403),
        (["tokens:manage", "llm_backends:read"], ["llm_backends:read", "llm:generate"], 403),
        # without tokens:manage nothing at all
        (["llm_backends:write"], ["llm_backends:read"], 403),
    ],
)
def test_no_token_grants_more_than_it_has(
    live_server: LiveServer, holder: list[str], asked: list[str], status: int
) -> None:
    holder_token = make(live_server, "holder", holder).json()["token"]
    response = make(live_server, "child", asked, by=live_server.client(holder_token))
    assert response.status_code == status, response.text
    if status == 403 and "tokens:manage" in holder:
        assert "Cannot grant" in response.json()["detail"]


def test_bootstrap_has_every_scope_and_bad_bodies_are_422(live_server: LiveServer) -> None:
    assert make(live_server, "everything", ALL).status_code == 201
    for body in (
        {"name": "x", "scopes": ["root"]},
        {"name": "x", "scopes": []},
        {"name": "", "scopes": ["llm_backends:read"]},
        {"name": "a\nb", "scopes": ["llm_backends:read"]},
        {"name": "x", "scopes": ["llm_backends:read"], "extra": 1},
    ):
        response = live_server.admin.post("/api/tokens", json=body)
        assert response.status_code == 422, body


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/tokens"), ("POST", "/api/tokens"), ("DELETE", "/api/tokens/1")],
)
def test_managing_tokens_needs_the_scope(live_server: LiveServer, method: str, path: str) -> None:
    body = {"name": "x", "scopes": ["llm_backends:read"]} if method == "POST" else None
    assert live_server.client().request(method, path, json=body).status_code == 401
    writer = make(live_server, "w", ["llm_backends:write"]).json()["token"]
    response = live_server.client(writer).request(method, path, json=body)
    assert response.status_code == 403
    assert "token management" in response.json()["detail"]


async def test_whoami(live_server: LiveServer, sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as session:
        row, plain = await tokens.create_token(session, "ops", ["llm_backends:write"])
    me = live_server.client(plain).get("/api/auth/whoami")
    assert me.status_code == 200
    assert me.json() == {
        "name": "ops",
        "token_id": row.id,
        "scopes": ["llm_backends:metrics", "llm_backends:read", "llm_backends:write"],
    }
    boot = live_server.admin.get("/api/auth/whoami").json()
    assert boot["name"] == "bootstrap" and boot["token_id"] is None
    assert sorted(boot["scopes"]) == sorted(ALL)
    assert live_server.client().get("/api/auth/whoami").status_code == 401
    assert live_server.client("llmb_nope").get("/api/auth/whoami").status_code == 401
