"""Where things are: one state directory (LLM_BACKENDS_HOME, default the per-user data
directory) holds the SQLite file, the token file and the secret key file, wherever the command
runs from; explicit DATABASE_URL / TOKEN_FILE win; the server's banner says all of it once;
a library router finds the token file by itself."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from typer.testing import CliRunner

from llm_backends.cli import app
from llm_backends.router.core import LLMRouter
from llm_backends.settings import Settings
from llm_backends.store import tokens
from tests.conftest import LiveServer
from tests.fakes.common import FakeServer
from tests.fakes.served import serve_process

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("DATABASE_URL", "TOKEN_FILE", "ADMIN_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LLM_BACKENDS_HOME", str(tmp_path / "state"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return tmp_path / "state"


def test_files_go_to_the_state_directory_not_the_current_one(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = runner.invoke(app, ["token", "ensure"])
    assert result.exit_code == 0, result.output
    token_file = home / "admin-token"
    assert (home / "llm_backends.db").is_file() and token_file.is_file()
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    assert f"export TOKEN=$(cat {token_file})" in result.output
    assert list((tmp_path / "elsewhere").iterdir()) == []

    # Another directory, the same database.
    monkeypatch.chdir(tmp_path)
    listed = runner.invoke(app, ["token", "list"])
    assert "local-admin" in listed.output


def test_explicit_locations_win(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'mine.db'}")
    monkeypatch.setenv("TOKEN_FILE", str(tmp_path / "my-token"))
    assert runner.invoke(app, ["token", "ensure"]).exit_code == 0
    assert (tmp_path / "mine.db").is_file() and (tmp_path / "my-token").is_file()
    assert not home.exists()


def test_the_default_home_is_the_per_user_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLM_BACKENDS_HOME")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.llm_backends_home == tmp_path / "data" / "llm-backends"
    assert (
        settings.database_url == f"sqlite:///{tmp_path / 'data' / 'llm-backends'}/llm_backends.db"
    )


def test_serve_prints_one_banner_with_everything(home: Path, postgres_database: str) -> None:
    # PostgreSQL here trusts local users: the password is only there to be hidden.
    url = postgres_database.replace("postgres@", "postgres:hunter2-secret@")
    assert runner.invoke(app, ["token", "ensure"]).exit_code == 0  # the SQLite home's token
    with serve_process({"DATABASE_URL": url}) as process:
        with httpx.Client(base_url=process.url, timeout=10) as client:
            assert client.get("/ready").status_code == 200
    printed = "".join(process.output)
    assert printed.count("listening on") == 1
    port = process.url.rsplit(":", 1)[1]
    for expected in (
        f"http://127.0.0.1:{port}/ui/",
        f"http://127.0.0.1:{port}/api/llm-backends",
        f"http://127.0.0.1:{port}/docs",
        f"http://127.0.0.1:{port}/v1",
        "Ollama API",
        url.replace("hunter2-secret", "***"),
        f"export TOKEN=$(cat {home / 'admin-token'})",
    ):
        assert expected in printed, expected
    assert "hunter2-secret" not in printed


async def test_a_library_router_reports_stats_with_the_token_file(
    live_server: LiveServer,
    sessions: async_sessionmaker[AsyncSession],
    fake_ollama: FakeServer,
    tmp_path: Path,
) -> None:
    async with sessions() as session:
        _, plain = await tokens.create_token(session, "local-admin", ["llm_backends:write"])
    token_file = tmp_path / "admin-token"
    token_file.write_text(plain + "\n")
    live_server.admin.post(
        "/api/llm-backends",
        json={"model_name": "m", "backend_type": "ollama", "endpoint_url": fake_ollama.url},
    )
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, admin_api_url=live_server.url, token_file=token_file
    )
    assert settings.admin_api_token is None
    router = LLMRouter(settings=settings)
    try:
        await router.generate(model="m", prompt="hi")
    finally:
        await router.close()  # reports what is pending
    row = live_server.admin.get("/api/llm-backends").json()[0]
    assert row["total_requests"] == 1
