"""instructor (`instructor.from_openai`) through the gateway's OpenAI API, in its modes, to
an Ollama and an OpenAI-compatible backend; judged by what instructor parses.

instructor's pins (jiter<0.15, rich<15) exclude this project's openai, so it runs in its own
venv (`.venv-clients`, made by `make test` from tests/clients/requirements.txt) as a
subprocess: the same client and versions a user of instructor has.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.common import FakeServer
from tests.gateway.conftest import GatewayServer
from tests.gateway.features import MODEL, configure

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv-clients" / "bin" / "python"
SCRIPT = ROOT / "tests" / "clients" / "instructor_extract.py"
PARIS = {"city": "Paris"}


@pytest.fixture(scope="module")
def instructor_python() -> Path:
    if not PYTHON.exists():
        if os.environ.get("CI"):
            pytest.fail(".venv-clients is missing: `make test` makes it (`make clients`)")
        pytest.skip("no .venv-clients here: `make clients` makes it")
    return PYTHON


@pytest.fixture(params=["ollama", "openai"])
def kind(request: pytest.FixtureRequest) -> str:
    """The backend type the config of MODEL gets."""
    return str(request.param)


@pytest.fixture
def fake(
    kind: str, gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> FakeServer:
    """The fake behind MODEL's config, of type `kind`."""
    return configure(gateway, kind, fake_ollama, fake_openai)


def extract(python: Path, gateway: GatewayServer, mode: str, stream: bool = False) -> Any:
    command = [str(python), str(SCRIPT), gateway.url, MODEL, mode] + (["stream"] if stream else [])
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_json_mode(
    instructor_python: Path, gateway: GatewayServer, fake: FakeServer, kind: str, stream: bool
) -> None:
    """instructor's documented Ollama set-up (`Mode.JSON`): `response_format` json_object,
    which the gateway hands an Ollama backend as `format: "json"`."""
    fake.configure(reply=json.dumps(PARIS), chunks=4)
    assert extract(instructor_python, gateway, "JSON", stream) == PARIS
    sent = fake.bodies[-1]
    if kind == "ollama":
        assert sent["format"] == "json"
    else:
        assert sent["response_format"] == {"type": "json_object"}


def test_json_schema_mode(
    instructor_python: Path, gateway: GatewayServer, fake: FakeServer, kind: str
) -> None:
    fake.configure(reply=json.dumps(PARIS))
    assert extract(instructor_python, gateway, "JSON_SCHEMA") == PARIS
    sent = fake.bodies[-1]
    schema = sent["format"] if kind == "ollama" else sent["response_format"]["json_schema"]
    if kind == "openai":
        schema = schema["schema"]
    assert schema["properties"] == {"city": {"title": "City", "type": "string"}}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_tools_mode(
    instructor_python: Path, gateway: GatewayServer, fake: FakeServer, kind: str, stream: bool
) -> None:
    """instructor's default: one tool named after the model, forced by a named `tool_choice`.
    Ollama has no tool_choice: the gateway honours the named choice by offering that tool
    alone (README, full-fidelity requests)."""
    name = "PartialCity" if stream else "City"  # create_partial's model is Partial[City]
    fake.configure(tool_calls=[{"name": name, "arguments": PARIS}])
    assert extract(instructor_python, gateway, "TOOLS", stream) == PARIS
    sent = fake.bodies[-1]
    assert [tool["function"]["name"] for tool in sent["tools"]] == [name]
    if kind == "ollama":
        assert "tool_choice" not in sent
    else:
        assert sent["tool_choice"] == {"type": "function", "function": {"name": name}}


def test_md_json_mode_to_ollama(
    instructor_python: Path,
    gateway: GatewayServer,
    fake_ollama: FakeServer,
    fake_openai: FakeServer,
) -> None:
    """`Mode.MD_JSON` asks in the prompt: plain text both ways, a JSON block in the answer."""
    fake = configure(gateway, "ollama", fake_ollama, fake_openai)
    fake.configure(reply=f"Here it is:\n```json\n{json.dumps(PARIS)}\n```")
    assert extract(instructor_python, gateway, "MD_JSON") == PARIS
    assert "format" not in fake.bodies[-1]
