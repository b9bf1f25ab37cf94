"""Tokens never appear in logs, errors or responses: a real `llm-backends serve` process at
DEBUG level is driven through auth successes and failures on every surface, and everything it
printed is searched for every token it saw."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from llm_backends.cli import app as cli
from tests.fakes.common import FakeServer
from tests.fakes.served import serve_process

BOOTSTRAP = "bootstrap-secret-0123456789abcdef"
HELLO = [{"role": "user", "content": "hi"}]
UNKNOWN = "llmb_unknown0123456789abcdefghijklmnopqrstuvw"
BACKEND_KEY = "sk-backend-key-0123456789abcdef"


@pytest.fixture
def server_env(tmp_path: Path, fake_ollama: FakeServer) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'secrets.db'}",
        "ADMIN_API_TOKEN": BOOTSTRAP,
        "ADMIN_API_URL": "http://127.0.0.1:9",
        "OLLAMA_URL": fake_ollama.url,
        "GATEWAY_REQUIRE_AUTH": "true",
        "LOG_LEVEL": "DEBUG",
        "TOKEN_FILE": str(tmp_path / "token"),
    }


@pytest.fixture
def created_tokens(server_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for key, value in server_env.items():
        monkeypatch.setenv(key, value)
    made = {}
    for scope in ("llm_backends:read", "llm_backends:write", "llm:generate"):
        result = CliRunner().invoke(cli, ["token", "create", "--scope", scope])
        assert result.exit_code == 0, result.output
        made[scope] = result.output.strip().splitlines()[-1]
    revoked = CliRunner().invoke(cli, ["token", "create", "--scope", "llm_backends:write"])
    made["revoked"] = revoked.output.strip().splitlines()[-1]
    assert CliRunner().invoke(cli, ["token", "revoke", "4"]).exit_code == 0
    return made


@pytest.fixture
def serve(server_env: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    with serve_process(server_env) as process:
        yield process.url, process.output


def test_no_token_is_ever_printed_or_returned(
    serve: tuple[str, list[str]], created_tokens: dict[str, str], fake_ollama: FakeServer
) -> None:
    url, printed = serve
    secrets = [BOOTSTRAP, UNKNOWN, *created_tokens.values()]
    bodies: list[str] = []
    body = {"model_name": "m", "backend_type": "ollama", "endpoint_url": fake_ollama.url}
    with httpx.Client(base_url=url, timeout=30) as client:
        for token in secrets:
            for headers in (
                {"Authorization": f"Bearer {token}"},
                {"Authorization": f"Basic {token}"},
                {"Authorization": token},
                {"api-key": token},
            ):
                for method, path, payload in (
                    ("GET", "/api/llm-backends", None),
                    ("POST", "/api/llm-backends", body),
                    ("POST", "/api/llm-backends", {**body, "description": token, "max_tokens": -1}),
                    ("POST", "/api/llm-backends/metrics", {"stats": "nope"}),
                    ("POST", "/v1/chat/completions", {"model": "m", "messages": HELLO}),
                    ("POST", "/v1/completions", {"model": token}),
                    ("POST", "/api/generate", {"model": "m", "prompt": "hi", "stream": False}),
                    ("POST", "/api/chat", {"model": token, "messages": "bad"}),
                    ("GET", f"/api/llm-backends/model/{token}", None),
                ):  # fmt: skip
                    response = client.request(method, path, json=payload, headers=headers)
                    assert response.status_code < 500, (path, response.text)
                    bodies.append(response.text)
                    bodies.append(str(response.headers))
            client.delete("/api/llm-backends/1", headers={"Authorization": f"Bearer {BOOTSTRAP}"})
    # A token sent as *data* (a description, a model name) is the client's own data: echoing it
    # in the field-naming 422 is fine. What must never happen is a token sent as a credential
    # coming back, so check the responses to pure credential use:
    with httpx.Client(base_url=url, timeout=30) as client:
        for token in secrets:
            for path in ("/api/llm-backends", "/v1/models", "/api/tags"):
                response = client.get(path, headers={"Authorization": f"Bearer {token}"})
                assert token not in response.text and token not in str(response.headers)
    # A backend's api_key: stored, used by the gateway, audited, never shown.
    with httpx.Client(base_url=url, timeout=30) as client:
        boot = {"Authorization": f"Bearer {BOOTSTRAP}"}
        keyed = {**body, "model_name": "keyed", "api_key": BACKEND_KEY}
        made = client.post("/api/llm-backends", json=keyed, headers=boot)
        assert made.status_code == 201 and BACKEND_KEY not in made.text
        for method, path, payload, headers in (
            ("POST", "/api/llm-backends", {**keyed, "max_tokens": -1}, boot),
            ("POST", "/api/llm-backends", keyed, boot),  # 409
            ("GET", "/api/llm-backends", None, boot),
            ("PUT", f"/api/llm-backends/{made.json()['id']}", {"api_key": BACKEND_KEY + "2"}, boot),
            ("GET", "/api/audit", None, boot),
            ("GET", "/api/llm-backends/model/keyed", None, {}),
            ("POST", "/api/generate", {"model": "keyed", "prompt": "hi", "stream": False}, {
                "Authorization": f"Bearer {created_tokens['llm:generate']}"}),
        ):  # fmt: skip
            response = client.request(method, path, json=payload, headers=headers)
            assert response.status_code < 500, (path, response.text)
            assert BACKEND_KEY not in response.text, path
    assert fake_ollama.requests[-1].headers["authorization"] == f"Bearer {BACKEND_KEY}2"
    secrets.append(BACKEND_KEY)
    everything_printed = "".join(printed)
    assert "config_changed" in everything_printed
    for token in secrets:
        assert token not in everything_printed, "a token reached the server's output"
    assert "routing_llm_request" in everything_printed or "Uvicorn running" in everything_printed
