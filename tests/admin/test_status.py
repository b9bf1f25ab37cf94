"""GET /api/llm-backends/status: per config and per server, what the probes found."""

from __future__ import annotations

import time

from tests.conftest import LiveServer
from tests.fakes.common import FakeServer
from tests.fakes.fake_ollama import OllamaBehaviour
from tests.fakes.server import free_port


def wait_for(server: LiveServer, check, timeout: float = 10.0) -> dict:  # type: ignore[no-untyped-def]
    """Poll the status until `check(status)` holds (the probes run in the server's loop)."""
    deadline = time.monotonic() + timeout
    while True:
        status = server.admin.get("/api/llm-backends/status").json()
        if check(status) or time.monotonic() > deadline:
            return status


def test_status_names_every_server_with_its_health(
    start_server, fake_ollama: FakeServer[OllamaBehaviour]
) -> None:  # type: ignore[no-untyped-def]
    dead = f"http://127.0.0.1:{free_port()}"
    fake_ollama.configure(models=["llama3:8b", "phi3:mini"])
    server: LiveServer = start_server(health_check_interval=0.05, ollama_url=fake_ollama.url)
    assert server.client().get("/api/llm-backends/status").status_code == 401
    created = server.admin.post(
        "/api/llm-backends",
        json={
            "model_name": "llama3:8b",
            "backend_type": "ollama",
            "endpoint_url": fake_ollama.url,
            "endpoints": [{"url": dead}],
        },
    ).json()

    def probed(status: dict) -> bool:
        servers = status["configs"][0]["servers"] if status["configs"] else []
        return len(servers) == 2 and all(s["since"] for s in servers)

    status = wait_for(server, probed)
    (config,) = status["configs"]
    assert {k: config[k] for k in ("id", "model_name", "backend_type", "enabled")} == {
        "id": created["id"],
        "model_name": "llama3:8b",
        "backend_type": "ollama",
        "enabled": True,
    }
    up, down = config["servers"]
    assert up["url"] == fake_ollama.url and up["healthy"] is True
    assert up["models"] == ["llama3:8b", "phi3:mini"] and up["probe_latency_ms"] > 0
    assert up["in_flight"] == 0 and up["last_error"] is None
    assert down["url"] == dead and down["healthy"] is False
    assert "Connect" in down["last_error"] and down["since"].endswith("Z")
    (default,) = status["default_servers"]
    assert default["url"] == fake_ollama.url and default["healthy"] is True
    metrics = server.client().get("/metrics").text
    assert f'llm_backend_server_healthy{{url="{dead}"}} 0.0' in metrics
    assert f'llm_backend_server_healthy{{url="{fake_ollama.url}"}} 1.0' in metrics
