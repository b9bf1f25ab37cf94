"""The `llm-backends` command: tokens, migrations, and `serve` as a real process."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from llm_backends.cli import app
from tests.fakes.served import serve_process

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "TOKEN_FILE": str(tmp_path / "token"),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("ADMIN_API_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    return values


def test_token_create_prints_the_token_last_and_stores_only_its_hash(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["token", "create", "--scope", "llm_backends:read", "--name", "ci"])
    assert result.exit_code == 0, result.output
    token = result.output.strip().splitlines()[-1]
    assert token.startswith("llmb_") and len(token) > 40
    database = Path(env["DATABASE_URL"].removeprefix("sqlite:///")).read_bytes()
    assert token.encode() not in database

    listed = runner.invoke(app, ["token", "list"])
    assert "ci\tllm_backends:read\tactive" in listed.output and token not in listed.output

    assert runner.invoke(app, ["token", "revoke", "1"]).exit_code == 0
    assert "revoked" in runner.invoke(app, ["token", "list"]).output
    again = runner.invoke(app, ["token", "revoke", "1"])
    assert again.exit_code == 1


def test_token_create_rejects_unknown_scopes(env: dict[str, str]) -> None:
    result = runner.invoke(app, ["token", "create", "--scope", "root"])
    assert result.exit_code != 0
    assert "llm_backends:read" in result.output  # the error lists the valid choices


def test_token_ensure_creates_one_token_once_and_never_prints_it(env: dict[str, str]) -> None:
    first = runner.invoke(app, ["token", "ensure"])
    assert first.exit_code == 0, first.output
    token = Path(env["TOKEN_FILE"]).read_text().strip()
    assert token not in first.output and "export TOKEN=$(cat" in first.output
    assert oct(Path(env["TOKEN_FILE"]).stat().st_mode & 0o777) == "0o600"
    second = runner.invoke(app, ["token", "ensure"])
    assert Path(env["TOKEN_FILE"]).read_text().strip() == token
    assert "Created" not in second.output


def test_serve_migrates_and_answers_with_a_created_token(env: dict[str, str]) -> None:
    """`llm-backends serve` as a real process, the way `make run` starts it."""
    created = runner.invoke(app, ["token", "create", "--scope", "llm_backends:write"])
    token = created.output.strip().splitlines()[-1]
    with serve_process(env) as process:
        with httpx.Client(base_url=process.url, timeout=10) as client:
            body = {
                "model_name": "m",
                "backend_type": "ollama",
                "endpoint_url": "http://localhost:11434",
            }
            response = client.post(
                "/api/llm-backends", json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 201, response.text
            assert client.get("/ready").status_code == 200
    assert token not in "".join(process.output)


def test_the_cli_starts_without_the_server_and_database_stack() -> None:
    """`--help` and the Admin API client commands are what an operator runs most: the web
    framework, SQLAlchemy and Alembic (~1 s of imports) are loaded only by the commands that
    serve, migrate or touch the token table."""
    import subprocess
    import sys

    heavy = ("fastapi", "starlette", "sqlalchemy", "alembic", "uvicorn", "aiohttp")
    code = (
        "import sys; import llm_backends.cli; from llm_backends.cli_commands import client; "
        f"print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []
