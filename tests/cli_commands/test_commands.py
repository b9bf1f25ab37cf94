"""Every HTTP command of `llm-backends`, in table and JSON form, against a real server."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from llm_backends.cli import app
from tests.fakes.common import FakeServer
from tests.fakes.fake_openai import OpenAIBehaviour
from tests.fakes.operator_server import OperatorServer
from tests.fakes.server import free_port

Cli = Callable[..., Result]


@pytest.fixture
def cli(server: OperatorServer) -> Cli:
    """`cli("backends", "list", input=..., token=...)`: the command with the user's environment."""

    def invoke(*args: str, input: str | None = None, token: str | None = None) -> Result:
        env = {**server.cli_env(token), "COLUMNS": "250", "NO_COLOR": "1"}
        return CliRunner().invoke(app, list(args), input=input, env=env)

    return invoke


@pytest.fixture
def tiny(cli: Cli, fake_backend: FakeServer[OpenAIBehaviour]):  # type: ignore[no-untyped-def]
    """A config `tiny` on the fake backend, removed afterwards."""
    fake_backend.reset()
    fake_backend.state.behaviour.models = ["tiny"]  # what its /v1/models lists
    added = cli("backends", "add", "tiny", "--type", "openai", "--url", fake_backend.url, "--json")
    assert added.exit_code == 0, added.output
    row = json.loads(added.stdout)
    yield row
    cli("backends", "delete", str(row["id"]), "--yes")


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.startswith("llm-backends ")


def test_add_list_show_update_toggle_in_both_output_modes(
    cli: Cli, tiny: dict, fake_backend: FakeServer[OpenAIBehaviour]
) -> None:
    assert tiny["model_name"] == "tiny" and tiny["backend_type"] == "openai"

    table = cli("backends", "list")
    assert table.exit_code == 0
    assert "tiny" in table.stdout and fake_backend.url in table.stdout and "yes" in table.stdout
    listed = json.loads(cli("backends", "list", "--json").stdout)
    assert [row["model_name"] for row in listed] == ["tiny"]

    by_name = cli("backends", "show", "tiny")
    assert by_name.exit_code == 0 and "timeout_seconds" in by_name.stdout
    assert json.loads(cli("backends", "show", str(tiny["id"]), "--json").stdout) == listed[0]

    updated = cli(
        "backends", "update", "tiny", "--max-tokens", "64", "--description", "d", "--json"
    )
    assert updated.exit_code == 0, updated.output
    assert json.loads(updated.stdout)["max_tokens"] == 64
    assert "Updated tiny" in cli("backends", "update", "tiny", "--priority", "5").stdout

    toggled = cli("backends", "toggle", "tiny")
    assert toggled.exit_code == 0 and "disabled" in toggled.stdout
    assert json.loads(cli("backends", "toggle", "tiny", "--json").stdout)["enabled"] is True


def test_bad_values_name_the_field_and_fail(cli: Cli) -> None:
    result = cli("backends", "add", "x", "--type", "nope", "--url", "localhost")
    assert result.exit_code == 1
    assert "backend_type: must be one of" in result.stderr and "endpoint_url:" in result.stderr
    missing = cli("backends", "show", "no-such-model")
    assert missing.exit_code == 1 and "no config for model" in missing.stderr


def test_delete_asks_first_unless_yes(cli: Cli, server: OperatorServer) -> None:
    added = json.loads(
        cli("backends", "add", "doomed", "--type", "ollama", "--url", "http://a:1", "--json").stdout
    )
    refused = cli("backends", "delete", "doomed", input="n\n")
    assert refused.exit_code == 1 and "Nothing deleted" in refused.stdout
    assert cli("backends", "show", "doomed").exit_code == 0
    confirmed = cli("backends", "delete", "doomed", input="y\n")
    assert confirmed.exit_code == 0 and "Deleted doomed" in confirmed.stdout
    assert cli("backends", "show", str(added["id"])).exit_code == 1

    again = json.loads(
        cli("backends", "add", "doomed", "--type", "ollama", "--url", "http://a:1", "--json").stdout
    )
    deleted = cli("backends", "delete", "doomed", "--yes", "--json")
    assert json.loads(deleted.stdout) == {
        "message": "Backend deleted successfully",
        "id": again["id"],
    }


def test_a_read_token_lists_but_cannot_write(cli: Cli, server: OperatorServer) -> None:
    assert cli("backends", "list", token=server.read_token).exit_code == 0
    refused = cli(
        "backends", "add", "m", "--type", "ollama", "--url", "http://a:1", token=server.read_token
    )
    assert refused.exit_code == 1 and "write" in refused.stderr.lower()


def test_the_token_file_is_used_when_no_token_is_set(
    server: OperatorServer, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(server.write_token + "\n")
    env = {
        **server.env,
        "ADMIN_API_URL": server.url,
        "ADMIN_API_TOKEN": "",
        "TOKEN_FILE": str(token_file),
    }
    result = CliRunner().invoke(app, ["backends", "list", "--json"], env=env)
    assert result.exit_code == 0, result.output
    env["TOKEN_FILE"] = str(tmp_path / "missing")
    refused = CliRunner().invoke(app, ["backends", "list"], env=env)
    assert refused.exit_code == 1 and "ADMIN_API_TOKEN" in refused.stderr


def test_an_unreachable_server_is_said_plainly() -> None:
    env = {"ADMIN_API_URL": f"http://127.0.0.1:{free_port()}", "ADMIN_API_TOKEN": "t"}
    result = CliRunner().invoke(app, ["backends", "list"], env=env)
    assert result.exit_code == 1 and "cannot reach" in result.stderr


def test_run_streams_one_answer(
    cli: Cli, tiny: dict, fake_backend: FakeServer[OpenAIBehaviour]
) -> None:
    fake_backend.state.behaviour.reply = "Four streamed pieces here."
    fake_backend.state.behaviour.chunks = 4
    result = cli("run", "tiny", "Hello there", "--verbose")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Four streamed pieces here.\n"
    assert f"backend: openai {fake_backend.url}" in result.stderr and "tokens: 4" in result.stderr
    sent = fake_backend.state.requests[-1].body
    assert sent["stream"] is True and sent["messages"] == [
        {"role": "user", "content": "Hello there"}
    ]


def test_run_without_a_prompt_chats_until_bye(
    cli: Cli, tiny: dict, fake_backend: FakeServer[OpenAIBehaviour]
) -> None:
    fake_backend.state.behaviour.reply = "ok"
    result = cli("run", "tiny", input="first\nsecond\n/bye\nnever sent\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == "ok\nok\n"
    chats = [r.body for r in fake_backend.state.requests if r.path == "/v1/chat/completions"]
    assert len(chats) == 2
    assert chats[1]["messages"] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "second"},
    ]


def test_run_of_a_failing_backend_exits_non_zero(
    cli: Cli, tiny: dict, fake_backend: FakeServer[OpenAIBehaviour]
) -> None:
    fake_backend.state.behaviour.status = 500
    result = cli("run", "tiny", "hi")
    assert result.exit_code == 1 and "error:" in result.stderr


def _has_status(server: OperatorServer) -> bool:
    answer = httpx.get(
        server.url + "/api/llm-backends/status",
        headers={"Authorization": f"Bearer {server.write_token}"},
    )
    return answer.status_code == 200


def test_ps_in_both_output_modes(cli: Cli, tiny: dict, server: OperatorServer) -> None:
    table, as_json = cli("ps"), cli("ps", "--json")
    if not _has_status(server):
        assert table.exit_code == 1 and "no status endpoint" in table.stderr
        return
    assert table.exit_code == 0 and "tiny" in table.stdout
    status = json.loads(as_json.stdout)
    assert [c["model_name"] for c in status["configs"]] == ["tiny"]
    assert all("in_flight" in s for c in status["configs"] for s in c["servers"])


def test_check_passes_on_a_live_server_and_fails_on_a_dead_one(
    cli: Cli, tiny: dict, fake_backend: FakeServer[OpenAIBehaviour]
) -> None:
    live = cli("check")
    assert live.exit_code == 0, live.output
    assert "ok" in live.stdout
    results = json.loads(cli("check", "--json").stdout)
    assert results == [
        {
            "model": "tiny",
            "backend_type": "openai",
            "endpoint": fake_backend.url,
            "reachable": True,
            "has_model": True,
            "generation": True,
            "backend": f"openai {fake_backend.url}",
            "detail": None,
            "ok": True,
        }
    ]
    tiny_generations = [
        r.body for r in fake_backend.state.requests if r.path.endswith("completions")
    ]
    assert tiny_generations and all(body["max_tokens"] == 1 for body in tiny_generations)

    dead = f"http://127.0.0.1:{free_port()}"
    added = json.loads(
        cli("backends", "add", "gone", "--type", "openai", "--url", dead, "--json").stdout
    )
    try:
        failing = cli("check")
        assert failing.exit_code == 1
        assert "1 of 2 failed: gone" in failing.stdout
        by_model = {r["model"]: r for r in json.loads(cli("check", "--json").stdout)}
        assert by_model["gone"]["ok"] is False and by_model["gone"]["reachable"] is False
        assert by_model["tiny"]["ok"] is True
        assert cli("check", "--json").exit_code == 1
    finally:
        cli("backends", "delete", str(added["id"]), "--yes")


def test_check_fails_when_the_server_lacks_the_model(
    cli: Cli, tiny: dict, fake_backend: FakeServer[OpenAIBehaviour]
) -> None:
    added = json.loads(
        cli(
            "backends",
            "add",
            "absent",
            "--type",
            "openai",
            "--url",
            fake_backend.url,
            "--backend-model",
            "not-served-there",
            "--json",
        ).stdout
    )
    try:
        result = cli("check", "--json")
        assert result.exit_code == 1
        by_model = {r["model"]: r for r in json.loads(result.stdout)}
        assert by_model["absent"]["has_model"] is False and by_model["absent"]["ok"] is False
        assert by_model["tiny"]["ok"] is True
    finally:
        cli("backends", "delete", str(added["id"]), "--yes")


def test_audit_in_both_output_modes(cli: Cli, tiny: dict, server: OperatorServer) -> None:
    table, as_json = cli("audit", "--model", "tiny"), cli("audit", "--model", "tiny", "--json")
    answer = httpx.get(
        server.url + "/api/audit", headers={"Authorization": f"Bearer {server.write_token}"}
    )
    if answer.status_code == 404:
        assert table.exit_code == 1 and as_json.exit_code == 1
        return
    assert table.exit_code == 0 and "backend.create" in table.stdout
    page = json.loads(as_json.stdout)
    assert page["items"][0]["action"] == "backend.create"
    assert page["items"][0]["target"]["model_name"] == "tiny"


def test_downgrade_asks_first(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}"}
    assert CliRunner().invoke(app, ["migrate"], env=env).exit_code == 0
    refused = CliRunner().invoke(app, ["downgrade"], env=env, input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert CliRunner().invoke(app, ["downgrade", "--yes"], env=env).exit_code == 0


def test_check_of_an_ollama_config_finds_its_model_by_the_latest_tag(
    cli: Cli, server: OperatorServer
) -> None:
    added = json.loads(
        cli(
            "backends",
            "add",
            "llama3.2",
            "--type",
            "ollama",
            "--url",
            server.env["OLLAMA_URL"],
            "--json",
        ).stdout
    )
    try:
        result = json.loads(cli("check", "--json").stdout)
        assert result == [
            {
                "model": "llama3.2",
                "backend_type": "ollama",
                "endpoint": server.env["OLLAMA_URL"],
                "reachable": True,
                "has_model": True,
                "generation": True,
                "backend": f"ollama {server.env['OLLAMA_URL']}",
                "detail": None,
                "ok": True,
            }
        ]
    finally:
        cli("backends", "delete", str(added["id"]), "--yes")
