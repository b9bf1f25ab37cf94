"""Backend credentials: `api_key` is write-only, encrypted at rest, audited as a marker,
handed out only to a token with `llm_backends:secrets`, and sent to the backend in both
gateway and library mode."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm_backends.router.core import LLMRouter
from llm_backends.settings import Settings
from llm_backends.store import tokens
from tests.conftest import LiveServer
from tests.fakes.common import FakeServer

KEY = "sk-test-0123456789abcdef-SECRET"
OTHER_KEY = "sk-other-fedcba9876543210-SECRET"


def create(server: LiveServer, **fields: object) -> dict:
    body = {"model_name": "vllm-model", "backend_type": "openai"} | fields
    body.setdefault("endpoint_url", "http://127.0.0.1:9")
    response = server.admin.post("/api/llm-backends", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def token_with(sessions: async_sessionmaker[AsyncSession], *scopes: str) -> str:
    async with sessions() as session:
        _, plain = await tokens.create_token(session, "t", list(scopes))
    return plain


async def test_the_key_is_never_returned_except_to_the_secrets_scope(
    live_server: LiveServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    created = create(live_server, api_key=KEY)
    assert created["has_api_key"] is True and "api_key" not in created
    lookup = "/api/llm-backends/model/vllm-model"
    write = await token_with(sessions, "llm_backends:write")
    secrets = await token_with(sessions, "llm_backends:secrets")
    seen: list[httpx.Response] = [
        live_server.admin.get("/api/llm-backends"),
        live_server.admin.get(f"/api/llm-backends/{created['id']}"),
        live_server.admin.put(f"/api/llm-backends/{created['id']}", json={"priority": 5}),
        live_server.client().get(lookup),
        live_server.client(write).get(lookup),
        live_server.admin.get("/api/audit"),
        live_server.admin.get(f"/api/llm-backends/{created['id']}/history"),
        live_server.client("llmb_not-a-token").get(lookup),  # public lookup: an unknown token
    ]
    for response in seen:
        assert response.status_code == 200, response.text
        assert KEY not in response.text
    assert live_server.client().get(lookup).json()["has_api_key"] is True
    assert "api_key" not in live_server.client(write).get(lookup).json()

    revealed = live_server.client(secrets).get(lookup).json()
    assert revealed["api_key"] == KEY
    # The bootstrap token has every scope, this one too.
    assert live_server.admin.get(lookup).json()["api_key"] == KEY


def test_update_replaces_keeps_or_removes_the_key_and_audits_markers(
    live_server: LiveServer,
) -> None:
    backend = f"/api/llm-backends/{create(live_server, api_key=KEY)['id']}"
    admin = live_server.admin
    assert admin.put(backend, json={"description": "x"}).json()["has_api_key"] is True
    assert admin.put(backend, json={"api_key": OTHER_KEY}).json()["has_api_key"] is True
    assert admin.get("/api/llm-backends/model/vllm-model").json()["api_key"] == OTHER_KEY
    assert admin.put(backend, json={"api_key": None}).json()["has_api_key"] is False
    assert admin.get("/api/llm-backends/model/vllm-model").json()["api_key"] is None

    history = admin.get(f"{backend}/history").json()
    markers = [entry["changes"].get("api_key") for entry in reversed(history)]
    assert markers == [
        {"before": None, "after": "set"},  # create
        None,  # description only
        {"before": "set", "after": "replaced"},
        {"before": "set", "after": None},
    ]
    assert KEY not in str(history) and OTHER_KEY not in str(history)


def test_bad_keys_and_header_names_are_422_without_echo(live_server: LiveServer) -> None:
    for fields, field in (
        ({"api_key": KEY + "\r\nX-Evil: 1"}, "api_key"),
        ({"api_key": ""}, "api_key"),
        ({"api_key": KEY, "api_key_header": "X Bad"}, "api_key_header"),
    ):
        body = {"model_name": "m", "backend_type": "openai", "endpoint_url": "http://h:1"}
        response = live_server.admin.post("/api/llm-backends", json=body | fields)
        assert response.status_code == 422
        assert response.json()["detail"].startswith(field) and KEY not in response.text


async def test_the_database_holds_only_ciphertext(
    live_server: LiveServer, sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    create(live_server, api_key=KEY)
    async with sessions() as session:
        rows = (await session.execute(text("SELECT * FROM llm_backends"))).all()
        audit_rows = (await session.execute(text("SELECT * FROM audit_log"))).all()
    assert rows and KEY not in str(rows) and KEY not in str(audit_rows)
    stored = rows[0]._mapping["api_key_encrypted"]
    assert stored and stored not in str(audit_rows)
    if database_url.startswith("sqlite"):
        path = Path(database_url.removeprefix("sqlite:///"))
        for file in (path, path.with_name(path.name + "-wal")):
            if file.exists():
                assert KEY.encode() not in file.read_bytes()


def test_gateway_sends_the_key_to_the_backend(
    live_server: LiveServer, fake_openai: FakeServer, fake_ollama: FakeServer
) -> None:
    create(live_server, endpoint_url=fake_openai.url, api_key=KEY)
    create(
        live_server,
        model_name="proxied",
        backend_type="ollama",
        endpoint_url=fake_ollama.url,
        api_key=OTHER_KEY,
        api_key_header="X-API-Key",
    )
    create(live_server, model_name="open", endpoint_url=fake_openai.url)
    with live_server.client() as client:
        hello = [{"role": "user", "content": "hi"}]
        for model in ("vllm-model", "open"):
            answer = client.post("/v1/chat/completions", json={"model": model, "messages": hello})
            assert answer.status_code == 200, answer.text
            assert KEY not in answer.text and KEY not in str(answer.headers)
        answer = client.post("/api/generate", json={"model": "proxied", "prompt": "hi"})
        assert answer.status_code == 200 and OTHER_KEY not in answer.text
    keyed, open_ = fake_openai.requests[-2:]
    assert keyed.headers["authorization"] == f"Bearer {KEY}"
    assert "authorization" not in open_.headers
    proxied = fake_ollama.requests[-1]
    assert proxied.headers["x-api-key"] == OTHER_KEY and "authorization" not in proxied.headers


async def test_library_router_gets_the_key_only_with_the_secrets_scope(
    live_server: LiveServer, fake_openai: FakeServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    create(live_server, endpoint_url=fake_openai.url, api_key=KEY)
    settings = Settings(_env_file=None, admin_api_url=live_server.url)  # type: ignore[call-arg]
    for scopes, expected in (
        (("llm_backends:secrets",), f"Bearer {KEY}"),
        (("llm_backends:read",), None),
    ):
        token = await token_with(sessions, *scopes)
        router = LLMRouter(settings=settings, admin_token=token, stats_sink=None)
        try:
            result = await router.generate(model="vllm-model", prompt="hi")
        finally:
            await router.close()
        assert result["backend"] == "openai"
        assert fake_openai.requests[-1].headers.get("authorization") == expected


def test_the_key_stays_out_of_reprs_and_the_auto_fallback() -> None:
    """A config's repr (what errors and logs might show) has no key, and `auto` never sends
    the MLX server's key to the default Ollama."""
    from llm_backends.router.fallback import plan_route
    from llm_backends.router.types import BackendConfig

    config = BackendConfig.from_mapping(
        {"model_name": "m", "backend_type": "auto", "endpoint_url": "http://mlx:8080",
         "api_key": KEY}
    )  # fmt: skip
    assert config.auth_headers == (("Authorization", f"Bearer {KEY}"),)
    assert KEY not in repr(config)
    mlx, ollama = plan_route(config, "http://ollama:11434").attempts
    assert mlx.config.auth_headers == config.auth_headers and ollama.config.auth_headers == ()


@pytest.mark.parametrize("secret_key", [None, "a-configured-secret-key"])
def test_key_material_without_and_with_secret_key(
    tmp_path: Path, secret_key: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without SECRET_KEY a key file appears in the state directory (mode 600) on first use
    and is reused; with one, no file is written. Another SECRET_KEY cannot decrypt."""
    from llm_backends.store.crypto import SecretBox, SecretUnreadable

    monkeypatch.setenv("LLM_BACKENDS_HOME", str(tmp_path / "home"))
    if secret_key:
        monkeypatch.setenv("SECRET_KEY", secret_key)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    box = SecretBox(settings.secret_key, settings.secret_key_file)
    assert not settings.secret_key_file.exists()  # nothing until a key is stored
    stored = box.encrypt(KEY)
    assert KEY not in stored
    again = SecretBox(settings.secret_key, settings.secret_key_file)
    assert again.decrypt(stored) == KEY
    if secret_key:
        assert not settings.secret_key_file.exists()
    else:
        assert oct(settings.secret_key_file.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(SecretUnreadable):
        SecretBox(Settings(_env_file=None, secret_key="other").secret_key, tmp_path / "x").decrypt(  # type: ignore[call-arg]
            stored
        )
