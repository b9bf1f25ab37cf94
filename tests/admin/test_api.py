"""The Admin API over real HTTP: every endpoint, auth, validation, concurrency, persistence."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import LiveServer

PHI = {
    "model_name": "phi3:mini",
    "backend_type": "ollama",
    "endpoint_url": "http://localhost:11434",
}


def create(server: LiveServer, **fields: object) -> dict:
    response = server.admin.post("/api/llm-backends", json={**PHI, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def test_create_returns_the_full_object(live_server: LiveServer) -> None:
    body = create(live_server, description="Phi-3 Mini via Ollama")
    assert set(body) == {
        "id", "model_name", "backend_type", "endpoint_url", "backend_model", "enabled",
        "max_tokens", "temperature_default", "timeout_seconds", "priority", "description",
        "avg_tokens_per_sec", "avg_latency_ms", "total_requests", "total_errors",
        "created_at", "updated_at", "has_api_key", "api_key_header",
        "endpoints", "weight", "max_concurrency", "fallbacks",
    }  # fmt: skip
    assert body["max_tokens"] == 2048 and body["temperature_default"] == 0.7
    assert body["timeout_seconds"] == 60 and body["priority"] == 100
    assert body["created_at"].endswith("Z")


@pytest.mark.parametrize(
    "name",
    [
        "mlx-community/Phi-3-mini-4k-instruct-4bit",
        "llama3.1:8b",
        "org/sub/model:tag",
        "naïve model",
    ],
)
def test_lookup_by_model_name_with_colons_and_slashes(live_server: LiveServer, name: str) -> None:
    create(live_server, model_name=name)
    anonymous = live_server.client()
    for path in (name, quote(name, safe=""), quote(name, safe="/:")):
        response = anonymous.get(f"/api/llm-backends/model/{path}")
        assert response.status_code == 200, (path, response.text)
        assert response.json()["model_name"] == name


def test_lookup_of_a_missing_model_is_404_and_of_a_disabled_one_200(
    live_server: LiveServer,
) -> None:
    """As the guide's "Issue 5" reads it: `jq '.enabled'` prints false for a disabled config."""
    anonymous = live_server.client()
    response = anonymous.get("/api/llm-backends/model/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "Backend not found for model: nope"}
    create(live_server, enabled=False)
    response = anonymous.get("/api/llm-backends/model/phi3:mini")
    assert response.status_code == 200
    assert (response.json()["model_name"], response.json()["enabled"]) == ("phi3:mini", False)


def test_lookup_returns_nothing_secret(live_server: LiveServer) -> None:
    create(live_server)
    response = live_server.client().get("/api/llm-backends/model/phi3:mini")
    assert live_server.token not in response.text
    assert not [key for key in response.json() if "hash" in key or key in ("token", "api_token")]


def test_get_update_toggle_delete_cycle(live_server: LiveServer) -> None:
    admin = live_server.admin
    created = create(live_server, description="first")
    backend_id = created["id"]
    assert admin.get(f"/api/llm-backends/{backend_id}").json() == created

    updated = admin.put(f"/api/llm-backends/{backend_id}", json={"temperature_default": 0.0})
    assert updated.status_code == 200
    assert updated.json()["temperature_default"] == 0.0
    assert updated.json()["description"] == "first"
    assert updated.json()["updated_at"] >= created["updated_at"]

    toggled = admin.post(f"/api/llm-backends/{backend_id}/toggle")
    assert toggled.json() == {
        "id": backend_id, "model_name": "phi3:mini", "enabled": False,
        "message": "Backend disabled",
    }  # fmt: skip
    toggled = admin.post(f"/api/llm-backends/{backend_id}/toggle")
    assert toggled.json()["enabled"] is True and toggled.json()["message"] == "Backend enabled"

    deleted = admin.delete(f"/api/llm-backends/{backend_id}")
    assert deleted.json() == {"message": "Backend deleted successfully", "id": backend_id}
    for call in (admin.get, admin.delete, admin.post):
        suffix = "/toggle" if call == admin.post else ""
        response = call(f"/api/llm-backends/{backend_id}{suffix}")
        assert response.status_code == 404
        assert response.json() == {"detail": f"Backend not found: {backend_id}"}
    assert admin.put(f"/api/llm-backends/{backend_id}", json={"enabled": True}).status_code == 404


def test_rename_onto_existing_model_is_409_and_changes_nothing(live_server: LiveServer) -> None:
    first = create(live_server)
    create(live_server, model_name="other")
    response = live_server.admin.put(
        f"/api/llm-backends/{first['id']}", json={"model_name": "other"}
    )
    assert response.status_code == 409
    assert response.json() == {
        "detail": "Backend configuration already exists for model: other (id 2); "
        "to change it, PUT /api/llm-backends/2"
    }
    assert live_server.admin.get(f"/api/llm-backends/{first['id']}").json() == first


def test_list_is_ordered_by_model_name_and_filters(live_server: LiveServer) -> None:
    for name, enabled in [("zeta", True), ("alpha", False), ("mid", True)]:
        create(live_server, model_name=name, enabled=enabled)
    names = [b["model_name"] for b in live_server.admin.get("/api/llm-backends").json()]
    assert names == ["alpha", "mid", "zeta"]
    enabled = live_server.admin.get("/api/llm-backends", params={"enabled_only": "true"}).json()
    assert [b["model_name"] for b in enabled] == ["mid", "zeta"]


# --- validation: a 422 whose detail names the field, never a 500 -------------------------------

BAD_CREATE = [
    ({"backend_type": "vllm-ish"}, "backend_type", "must be one of: auto, mlx, ollama, openai"),
    ({"endpoint_url": "ftp://host"}, "endpoint_url", "http:// or https://"),
    ({"endpoint_url": "localhost:11434"}, "endpoint_url", ""),
    ({"endpoint_url": "javascript:alert(1)"}, "endpoint_url", ""),
    ({"temperature_default": 2.5}, "temperature_default", "2"),
    ({"temperature_default": -0.1}, "temperature_default", "0"),
    ({"max_tokens": 0}, "max_tokens", "greater than 0"),
    ({"max_tokens": "many"}, "max_tokens", "integer"),
    ({"timeout_seconds": -5}, "timeout_seconds", "greater than 0"),
    ({"priority": -1}, "priority", ""),
    ({"model_name": ""}, "model_name", "at least 1"),
    ({"model_name": "x" * 256}, "model_name", "at most 255"),
    ({"model_name": " padded "}, "model_name", "white space"),
    ({"description": "x" * 4001}, "description", "at most 4000"),
    ({"description": "nul\u0000byte"}, "description", "NUL"),
    ({"enabled": "perhaps"}, "enabled", "boolean"),
    ({"unknown_field": 1}, "unknown_field", "Extra inputs"),
]


@pytest.mark.parametrize(("change", "field", "message"), BAD_CREATE)
def test_bad_create_names_the_field(
    live_server: LiveServer, change: dict, field: str, message: str
) -> None:
    response = live_server.admin.post("/api/llm-backends", json={**PHI, **change})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and f"{field}:" in detail and message in detail
    assert live_server.admin.get("/api/llm-backends").json() == []


@pytest.mark.parametrize("missing", ["model_name", "backend_type", "endpoint_url"])
def test_missing_required_field_is_named(live_server: LiveServer, missing: str) -> None:
    body = {k: v for k, v in PHI.items() if k != missing}
    response = live_server.admin.post("/api/llm-backends", json=body)
    assert response.status_code == 422
    assert f"{missing}: Field required" in response.json()["detail"]


@pytest.mark.parametrize(
    "field",
    ["model_name", "backend_type", "endpoint_url", "enabled", "max_tokens", "temperature_default",
     "timeout_seconds", "priority"],
)  # fmt: skip
def test_null_for_a_required_field_on_update_is_422(live_server: LiveServer, field: str) -> None:
    created = create(live_server)
    response = live_server.admin.put(f"/api/llm-backends/{created['id']}", json={field: None})
    assert response.status_code == 422
    assert field in response.json()["detail"]
    assert live_server.admin.get(f"/api/llm-backends/{created['id']}").json() == created


def test_null_clears_optional_fields(live_server: LiveServer) -> None:
    created = create(live_server, description="x", backend_model="served-id")
    response = live_server.admin.put(
        f"/api/llm-backends/{created['id']}", json={"description": None, "backend_model": None}
    )
    assert response.status_code == 200
    assert response.json()["description"] is None and response.json()["backend_model"] is None


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'{"model_name": ', b"null", b'"string"', b"{}" * 3]
)
def test_malformed_bodies_are_4xx(live_server: LiveServer, body: bytes) -> None:
    response = live_server.admin.post(
        "/api/llm-backends", content=body, headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text
    assert isinstance(response.json()["detail"], str)


def test_non_integer_id_is_422(live_server: LiveServer) -> None:
    response = live_server.admin.get("/api/llm-backends/abc")
    assert response.status_code == 422 and "backend_id" in response.json()["detail"]


def test_body_over_the_limit_is_413(live_server: LiveServer) -> None:
    huge = {**PHI, "description": "x" * (live_server.settings.max_body_bytes + 10)}
    response = live_server.admin.post("/api/llm-backends", json=huge)
    assert response.status_code == 413
    assert response.json() == {"detail": "Request body too large"}


def test_chunked_body_over_the_limit_is_413(live_server: LiveServer) -> None:
    limit = live_server.settings.max_body_bytes

    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    response = live_server.admin.post(
        "/api/llm-backends", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413


# --- concurrency and persistence ---------------------------------------------------------------


def test_twenty_simultaneous_creates_give_one_201_and_nineteen_409(live_server: LiveServer) -> None:
    async def burst() -> list[int]:
        headers = {"Authorization": f"Bearer {live_server.token}"}
        async with httpx.AsyncClient(
            base_url=live_server.url, headers=headers, timeout=60
        ) as client:
            responses = await asyncio.gather(
                *(client.post("/api/llm-backends", json=PHI) for _ in range(20))
            )
        return [r.status_code for r in responses]

    statuses = asyncio.run(burst())
    assert sorted(statuses) == [201] + [409] * 19
    assert len(live_server.admin.get("/api/llm-backends").json()) == 1


def test_twenty_simultaneous_toggles_leave_a_consistent_row(live_server: LiveServer) -> None:
    created = create(live_server)

    async def burst() -> list[dict]:
        headers = {"Authorization": f"Bearer {live_server.token}"}
        async with httpx.AsyncClient(
            base_url=live_server.url, headers=headers, timeout=60
        ) as client:
            responses = await asyncio.gather(
                *(client.post(f"/api/llm-backends/{created['id']}/toggle") for _ in range(20))
            )
        assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
        return [r.json() for r in responses]

    results = asyncio.run(burst())
    assert [r["enabled"] for r in results].count(False) == 10
    final = live_server.admin.get(f"/api/llm-backends/{created['id']}").json()
    assert final["enabled"] is True  # an even number of toggles
    for result in results:
        assert result["message"] == ("Backend enabled" if result["enabled"] else "Backend disabled")


def test_data_survives_a_server_restart(start_server) -> None:  # type: ignore[no-untyped-def]
    first = start_server()
    created = create(first, description="persist me")
    token = first.token
    first.thread.stop()
    second = start_server(admin_api_token=token)
    assert second.admin.get(f"/api/llm-backends/{created['id']}").json() == created


# --- health -----------------------------------------------------------------------------------


def test_health_and_ready(live_server: LiveServer) -> None:
    anonymous = live_server.client()
    assert anonymous.get("/health").json() == {"status": "ok"}
    assert anonymous.get("/ready").json() == {"status": "ready", "database": "ok"}


def test_openapi_documents_string_validation_errors(live_server: LiveServer) -> None:
    schema = live_server.client().get("/openapi.json").json()
    error = schema["components"]["schemas"]["HTTPValidationError"]
    assert error["properties"]["detail"]["type"] == "string"
