"""Auth matrix: every Admin API endpoint against every kind of credential."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm_backends.admin.auth import Scope
from llm_backends.store import tokens
from tests.conftest import LiveServer

PHI = {
    "model_name": "phi3:mini",
    "backend_type": "ollama",
    "endpoint_url": "http://localhost:11434",
}
METRICS = {
    "stats": [{"model_name": "phi3:mini", "requests": 1, "errors": 0, "latency_ms_sum": 5.0}]
}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    needs: str | None  # "read", "write", "metrics" or None (public)
    body: dict | None = None


ENDPOINTS = [
    Endpoint("GET", "/api/llm-backends", "read"),
    Endpoint("GET", "/api/llm-backends/{id}", "read"),
    Endpoint("POST", "/api/llm-backends", "write", {**PHI, "model_name": "new-model"}),
    Endpoint("PUT", "/api/llm-backends/{id}", "write", {"description": "changed"}),
    Endpoint("POST", "/api/llm-backends/{id}/toggle", "write"),
    Endpoint("DELETE", "/api/llm-backends/{id}", "write"),
    Endpoint("POST", "/api/llm-backends/metrics", "metrics", METRICS),
    Endpoint("GET", "/api/llm-backends/model/phi3:mini", None),
    Endpoint("GET", "/health", None),
    Endpoint("GET", "/ready", None),
]

# credential -> the scopes it grants (None: no valid identity at all)
CREDENTIALS: dict[str, frozenset[str] | None] = {
    "none": None,
    "malformed": None,
    "basic-scheme": None,
    "unknown": None,
    "revoked": None,
    "read": frozenset({"read"}),
    "metrics": frozenset({"metrics"}),
    "write": frozenset({"read", "write", "metrics"}),
    "bootstrap": frozenset({"read", "write", "metrics"}),
}


#: The 401 message of each credential without a valid identity, word for word.
UNAUTHORIZED = {
    "none": "Not authenticated: send a token as 'Authorization: Bearer <token>'",
    "malformed": "Malformed Authorization header: expected 'Authorization: Bearer <token>'",
    "basic-scheme": "Malformed Authorization header: expected 'Authorization: Bearer <token>'",
    "unknown": "Invalid token: it is unknown or has been revoked",
    "revoked": "Invalid token: it is unknown or has been revoked",
}


@pytest.fixture
async def credentials(
    live_server: LiveServer, sessions: async_sessionmaker[AsyncSession]
) -> dict[str, dict[str, str]]:
    async with sessions() as session:
        _, read = await tokens.create_token(session, "reader", [Scope.READ])
        _, write = await tokens.create_token(session, "writer", [Scope.WRITE])
        _, metrics = await tokens.create_token(session, "router", [Scope.METRICS])
        revoked_row, revoked = await tokens.create_token(session, "gone", [Scope.WRITE])
        assert await tokens.revoke_token(session, revoked_row.id)
    bearer = lambda token: {"Authorization": f"Bearer {token}"}  # noqa: E731
    return {
        "none": {},
        "malformed": {"Authorization": "Bearer"},
        "basic-scheme": {"Authorization": f"Basic {write}"},
        "unknown": bearer("llmb_" + "x" * 43),
        "revoked": bearer(revoked),
        "read": bearer(read),
        "metrics": bearer(metrics),
        "write": bearer(write),
        "bootstrap": bearer(live_server.token),
    }


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
async def test_every_endpoint_with_every_credential(
    live_server: LiveServer, credentials: dict[str, dict[str, str]], endpoint: Endpoint
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as client:
        for name, granted in CREDENTIALS.items():
            setup = await client.post(
                "/api/llm-backends", json=PHI, headers=credentials["bootstrap"]
            )
            backend_id = setup.json()["id"]
            path = endpoint.path.format(id=backend_id)
            response = await client.request(
                endpoint.method, path, json=endpoint.body, headers=credentials[name]
            )
            where = f"{endpoint.method} {path} as {name}: {response.text}"
            if endpoint.needs is None:
                assert response.status_code == 200, where
            elif granted is None:
                assert response.status_code == 401, where
                assert response.json() == {"detail": UNAUTHORIZED[name]}
                assert response.headers["www-authenticate"] == "Bearer"
            elif endpoint.needs not in granted:
                assert response.status_code == 403, where
                assert response.json() == {
                    "detail": f"Insufficient permissions: {endpoint.needs} access required"
                }
            else:
                assert response.status_code in (200, 201), where
            for token_header in credentials.values():
                for value in token_header.values():
                    secret = value.partition(" ")[2]
                    if len(secret) > 8:
                        assert secret not in response.text, where
            listing = await client.get("/api/llm-backends", headers=credentials["bootstrap"])
            for row in listing.json():
                await client.delete(
                    f"/api/llm-backends/{row['id']}", headers=credentials["bootstrap"]
                )


async def test_denied_writes_change_nothing(
    live_server: LiveServer, credentials: dict[str, dict[str, str]]
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as client:
        created = (
            await client.post("/api/llm-backends", json=PHI, headers=credentials["write"])
        ).json()
        for name in ("none", "unknown", "revoked", "read", "metrics"):
            await client.put(
                f"/api/llm-backends/{created['id']}",
                json={"enabled": False},
                headers=credentials[name],
            )
            await client.post(
                f"/api/llm-backends/{created['id']}/toggle", headers=credentials[name]
            )
            await client.delete(f"/api/llm-backends/{created['id']}", headers=credentials[name])
        after = await client.get(f"/api/llm-backends/{created['id']}", headers=credentials["read"])
    assert after.json() == created


async def test_metrics_report_folds_into_the_tracked_columns(
    live_server: LiveServer, credentials: dict[str, dict[str, str]]
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as client:
        await client.post("/api/llm-backends", json=PHI, headers=credentials["write"])
        report = {
            "stats": [
                {"model_name": "phi3:mini", "requests": 3, "errors": 1, "latency_ms_sum": 300.0,
                 "tokens_per_sec_sum": 40.0, "tokens_per_sec_samples": 2},
                {"model_name": "not-configured", "requests": 5, "errors": 0, "latency_ms_sum": 1.0},
            ]
        }  # fmt: skip
        response = await client.post(
            "/api/llm-backends/metrics", json=report, headers=credentials["metrics"]
        )
        assert response.status_code == 200 and response.json() == {"updated": 1}
        row = (await client.get("/api/llm-backends/model/phi3:mini")).json()
        bad = await client.post(
            "/api/llm-backends/metrics",
            json={
                "stats": [
                    {"model_name": "phi3:mini", "requests": 1, "errors": 2, "latency_ms_sum": 1}
                ]
            },
            headers=credentials["metrics"],
        )
    assert (row["total_requests"], row["total_errors"]) == (3, 1)
    assert row["avg_latency_ms"] == pytest.approx(100.0)
    assert row["avg_tokens_per_sec"] == pytest.approx(20.0)
    assert bad.status_code == 422 and "errors may not exceed requests" in bad.json()["detail"]
