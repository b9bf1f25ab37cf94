"""Replays every Admin API curl example of the seed guide, in order, with real curl (and jq,
where the guide pipes to it) against a live server on a free port."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.admin.seed import Example, admin_examples
from tests.conftest import LiveServer

# (summary, expected status, check of stdout) for each example, in the guide's order. Replaying the
# whole guide in order against one database gives the conflicts and 404s a real user would see.
EXPECTED: list[tuple[str, int | None, str | None]] = [
    ("GET /api/llm-backends", 200, "[]"),
    ("POST /api/llm-backends", 201, "created phi3:mini ollama"),
    ("GET /api/llm-backends/model/phi3:mini", 200, "config phi3:mini ollama"),
    ("POST /api/llm-backends", 409, "conflict phi3:mini"),
    ("POST /api/llm-backends", 201, "created llama3.1:8b auto"),
    ("GET /api/llm-backends/model/llama3.1:8b", 200, '"auto"'),
    ("POST /api/llm-backends", 409, "conflict phi3:mini"),
    ("POST /api/llm-backends", 409, "conflict llama3.1:8b"),
    ("POST /api/llm-backends", 201, "created codellama:7b auto"),
    ("GET /api/llm-backends?enabled_only=true", 200, "list codellama:7b llama3.1:8b phi3:mini"),
    ("GET /api/llm-backends", 200, "config phi3:mini ollama"),
    ("PUT /api/llm-backends/1", 200, "config phi3:mini mlx"),
    ("GET /api/llm-backends/model/phi3:mini", 200, '"mlx"'),
    ("POST /api/llm-backends/1/toggle", 200, "toggled false"),
    ("PUT /api/llm-backends/1", 200, "enabled false"),
    ("DELETE /api/llm-backends/1", 200, "deleted 1"),
    ("for-loop POST /api/llm-backends", None, "loop"),
    ("PUT /api/llm-backends/1", 404, "not found 1"),
    ("PUT /api/llm-backends/1", 404, "not found 1"),
    ("PUT /api/llm-backends/1", 404, "not found 1"),
    ("PUT /api/llm-backends/1", 404, "not found 1"),
    ("GET /api/llm-backends/model/phi3:mini", 200, '"http://localhost:11434"'),
    ("GET /api/llm-backends/model/phi3:mini", 200, "true"),
    ("POST /api/llm-backends/1/toggle", 404, "not found 1"),
    ("GET /api/llm-backends/model/phi3:mini", 200, "config phi3:mini ollama"),
    ("POST /api/llm-backends", 409, "conflict phi3:mini"),
    ("POST /api/llm-backends", 409, "conflict phi3:mini"),
    ("POST /api/llm-backends", 409, "conflict phi3:mini"),
]


#: A duplicate POST's 409 names the existing config and how to change it.
CONFLICT = re.compile(
    r"Backend configuration already exists for model: \S+ \(id (\d+)\); "
    r"to change it, PUT /api/llm-backends/\1"
)


def run_example(example: Example, server: LiveServer, headers_file: Path) -> tuple[int | None, str]:
    script = example.script.replace("http://localhost:8080/api/", f"{server.url}/api/")
    # -sS hides the progress meter; -D records the status line without touching stdout.
    script = re.sub(r"\bcurl ", f"curl -sS -D {headers_file} ", script)
    headers_file.unlink(missing_ok=True)
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script],
        env={**os.environ, "TOKEN": server.token},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"{example.summary} failed: {done.stderr}"
    statuses = re.findall(r"^HTTP/\S+ (\d{3})", headers_file.read_text(), re.MULTILINE)
    return (int(statuses[-1]) if statuses else None), done.stdout


def check_output(check: str, output: str) -> None:
    kind, _, arg = check.partition(" ")
    if kind in ("created", "config"):
        name, backend_type = arg.split()
        body = json.loads(output)
        assert (body["model_name"], body["backend_type"]) == (name, backend_type)
        assert body["created_at"].endswith("Z") and body["updated_at"].endswith("Z")
    elif kind == "conflict":
        assert CONFLICT.fullmatch(json.loads(output)["detail"]), output
        assert json.loads(output)["detail"].split(" (id")[0].endswith(f"model: {arg}")
    elif kind == "list":
        assert [item["model_name"] for item in json.loads(output)] == arg.split()
    elif kind == "toggled":
        body = json.loads(output)
        assert body["enabled"] is (arg == "true") and body["message"] == "Backend disabled"
    elif kind == "enabled":
        assert json.loads(output)["enabled"] is (arg == "true")
    elif kind == "deleted":
        assert json.loads(output) == {"message": "Backend deleted successfully", "id": int(arg)}
    elif kind == "not":
        assert json.loads(output) == {"detail": f"Backend not found: {arg.split()[-1]}"}
    elif kind == "loop":
        decoder, bodies, text = json.JSONDecoder(), [], output.strip()
        while text:
            body, end = decoder.raw_decode(text)
            bodies.append(body)
            text = text[end:].strip()
        # (PostgreSQL's sequences skip the ids a conflicting insert drew: ids vary.)
        assert [b.get("model_name") or b["detail"].split(" (id")[0] for b in bodies] == [
            "phi3:mini",
            "Backend configuration already exists for model: llama3.1:8b",
            "Backend configuration already exists for model: codellama:7b",
        ]
        assert all(CONFLICT.fullmatch(b["detail"]) for b in bodies[1:])
    else:
        assert json.loads(output) == json.loads(check)


def test_the_guide_has_the_examples_we_replay(seed_guide: Path) -> None:
    assert [example.summary for example in admin_examples(seed_guide)] == [e[0] for e in EXPECTED]


def test_replay_every_admin_example_in_order(
    live_server: LiveServer, seed_guide: Path, tmp_path: Path
) -> None:
    examples = admin_examples(seed_guide)
    for index, (example, (summary, status, check)) in enumerate(
        zip(examples, EXPECTED, strict=True)
    ):
        got_status, output = run_example(example, live_server, tmp_path / "headers")
        where = f"example {index} ({example.section}: {summary})"
        if status is not None:
            assert got_status == status, f"{where}: status {got_status}, body {output}"
        if check is not None:
            try:
                check_output(check, output)
            except (AssertionError, ValueError, KeyError) as error:
                pytest.fail(f"{where}: {error!r}; output: {output}")


@pytest.mark.parametrize("index", [11, 14, 17, 18, 19, 20])
def test_each_put_example_updates_an_existing_backend(
    live_server: LiveServer, seed_guide: Path, tmp_path: Path, index: int
) -> None:
    """The in-order replay deletes id 1 before the best-practice PUTs; replay each on a live row."""
    created = live_server.admin.post(
        "/api/llm-backends",
        json={
            "model_name": "phi3:mini",
            "backend_type": "ollama",
            "endpoint_url": "http://localhost:11434",
        },
    ).json()
    example = admin_examples(seed_guide)[index]
    sent = json.loads(re.search(r"-d '(.*)'", example.script, re.DOTALL).group(1))  # type: ignore[union-attr]
    example = Example(
        example.section,
        example.script.replace("/api/llm-backends/1", f"/api/llm-backends/{created['id']}"),
    )
    status, output = run_example(example, live_server, tmp_path / "headers")
    assert status == 200, output
    body = json.loads(output)
    for field, value in sent.items():
        assert body[field] == value
    untouched = {k: v for k, v in created.items() if k not in sent and k != "updated_at"}
    assert {k: body[k] for k in untouched} == untouched
