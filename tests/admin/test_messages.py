"""Admin API answers that say what is wrong and what to do, word for word: 409 with the
existing id, 415 for a body that is not JSON, the self-pointing endpoint warning, and a
`PUT {}` that changes nothing (not even updated_at)."""

from __future__ import annotations

import subprocess
from urllib.parse import urlsplit

import pytest

from tests.admin.test_api import PHI, create
from tests.conftest import LiveServer


def test_duplicate_post_names_the_existing_id_and_the_put_to_use(
    live_server: LiveServer,
) -> None:
    first = create(live_server)
    response = live_server.admin.post("/api/llm-backends", json=PHI)
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Backend configuration already exists for model: phi3:mini (id {first['id']}); "
        f"to change it, PUT /api/llm-backends/{first['id']}"
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/llm-backends"), ("PUT", "/api/llm-backends/{id}")],
)
def test_a_body_without_the_json_content_type_is_415_with_the_fix(
    live_server: LiveServer, method: str, path: str
) -> None:
    """What `curl -d '{...}'` without `-H 'Content-Type: application/json'` sends."""
    created = create(live_server, model_name="exists")
    response = live_server.admin.request(
        method,
        path.format(id=created["id"]),
        content=b'{"model_name": "x", "backend_type": "ollama", "endpoint_url": "http://h:1"}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415
    assert response.json() == {
        "detail": "Content-Type must be application/json, got "
        "application/x-www-form-urlencoded: send the body as JSON with the header "
        "'Content-Type: application/json' (curl: -H 'Content-Type: application/json')"
    }


def test_curl_without_the_header_gets_the_415(live_server: LiveServer) -> None:
    done = subprocess.run(
        [
            "curl", "-sS", "-X", "POST", f"{live_server.url}/api/llm-backends",
            "-H", f"Authorization: Bearer {live_server.token}",
            "-d", '{"model_name": "phi3:mini", "backend_type": "ollama", '
            '"endpoint_url": "http://localhost:11434"}',
            "-w", "\n%{http_code}",
        ],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert done.stdout.endswith("\n415")
    assert "-H 'Content-Type: application/json'" in done.stdout


def test_json_needs_its_content_type(live_server: LiveServer) -> None:
    response = live_server.admin.post(
        "/api/llm-backends",
        content=b'{"model_name": "m", "backend_type": "ollama", "endpoint_url": "http://h:1"}',
    )
    assert "content-type" not in response.request.headers
    assert response.status_code == 415
    assert response.json()["detail"].startswith(
        "Content-Type must be application/json, got nothing:"
    )
    response = live_server.admin.post(
        "/api/llm-backends",
        json={"model_name": "n", "backend_type": "ollama", "endpoint_url": "http://h:1"},
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201


def test_an_endpoint_at_this_server_is_written_with_a_warning(live_server: LiveServer) -> None:
    port = urlsplit(live_server.url).port
    for host in ("localhost", "127.0.0.1", "0.0.0.0"):
        response = live_server.admin.post(
            "/api/llm-backends",
            json={**PHI, "model_name": f"self-{host}", "endpoint_url": f"http://{host}:{port}"},
        )
        assert response.status_code == 201
        assert response.json()["warnings"] == [
            f"endpoint_url http://{host}:{port} is this llm-backends server's own address: "
            f"requests for 'self-{host}' would come back here and be refused as a loop "
            "(508 Loop Detected). Point it at the inference server (Ollama, mlx_lm.server, "
            "vLLM) instead."
        ]
    elsewhere = create(live_server)
    assert "warnings" not in elsewhere
    moved = live_server.admin.put(
        f"/api/llm-backends/{elsewhere['id']}", json={"endpoint_url": f"http://localhost:{port}/"}
    )
    assert moved.status_code == 200 and len(moved.json()["warnings"]) == 1
    # A GET shows the config as stored, without warnings.
    assert "warnings" not in live_server.admin.get(f"/api/llm-backends/{elsewhere['id']}").json()


def test_an_empty_put_changes_nothing_not_even_updated_at(live_server: LiveServer) -> None:
    created = create(live_server)
    response = live_server.admin.put(f"/api/llm-backends/{created['id']}", json={})
    assert response.status_code == 200
    assert response.json() == created
    assert live_server.admin.put("/api/llm-backends/999", json={}).status_code == 404
    changed = live_server.admin.put(
        f"/api/llm-backends/{created['id']}", json={"description": "x"}
    ).json()
    assert changed["updated_at"] > created["updated_at"]
