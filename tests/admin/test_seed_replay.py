"""Replays every Admin API curl example of the seed guide, in order, with real curl (and jq,
where the guide pipes to it) against a live server on a free port."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from llm_backends import BackendUnavailable, LLMRouter, ModelNotFound
from tests.admin.seed import Example, admin_examples
from tests.conftest import LiveServer
from tests.fakes.common import FakeServer
from tests.fakes.server import free_port

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


def guide_example(guide: Path, section: str, contains: str) -> Example:
    """The guide's Admin API example of `section` whose command contains `contains`."""
    (example,) = [
        e for e in admin_examples(guide) if e.section.startswith(section) and contains in e.script
    ]
    return example


async def test_troubleshooting_and_checklist_as_written(
    start_server,  # type: ignore[no-untyped-def]
    seed_guide: Path,
    tmp_path: Path,
    fake_ollama: FakeServer,
    fake_openai: FakeServer,
) -> None:
    """The guide's Issues 1-5 and its Verification Checklist, each reproduced on a real server
    and answered as the guide says: its curl commands (run with real curl and jq), the
    library router of its Python examples, and the log lines it greps for."""
    server = start_server(ollama_url=fake_ollama.url)
    headers = tmp_path / "headers"
    fake_ollama.configure(enforce_models=True, models=["phi3:mini", "llama3.1:8b"])
    created = server.admin.post(
        "/api/llm-backends",
        json={"model_name": "phi3:mini", "backend_type": "ollama", "endpoint_url": fake_ollama.url},
    ).json()
    assert created["id"] == 1  # the guide's examples say /api/llm-backends/1
    router = LLMRouter(admin_url=server.url, ollama_url=fake_ollama.url, stats_sink=None)
    try:
        # Verification Checklist 1: "Should return config, not 404".
        checklist = guide_example(seed_guide, "Verification Checklist", "model/phi3:mini")
        status, output = run_example(checklist, server, headers)
        assert status == 200 and json.loads(output)["model_name"] == "phi3:mini"
        # Checklist 4 and 5: the router generates, and logs routing_llm_request.
        with capture_logs() as logs:
            assert (await router.generate(model="phi3:mini", prompt="Test prompt"))[
                "backend"
            ] == "ollama"
        assert "routing_llm_request" in [e["event"] for e in logs]

        # Issue 1: a change is not seen by a running library router until its cache expires
        # (60 s) or it restarts; the gateway (the server's own process) sees it at once.
        server.admin.put(
            "/api/llm-backends/1", json={"backend_type": "mlx", "endpoint_url": fake_openai.url}
        )
        assert (await router.generate(model="phi3:mini", prompt="hi"))["backend"] == "ollama"
        gateway = server.client().post("/api/generate", json={"model": "phi3:mini", "prompt": "x"})
        assert gateway.headers["x-llm-backend"] == "mlx"
        restarted = LLMRouter(admin_url=server.url, ollama_url=fake_ollama.url, stats_sink=None)
        try:
            assert (await restarted.generate(model="phi3:mini", prompt="hi"))["backend"] == "mlx"
        finally:
            await restarted.close()
        router.invalidate()  # the local equivalent of the restart
        assert (await router.generate(model="phi3:mini", prompt="hi"))["backend"] == "mlx"

        # Issue 2: MLX on the wrong port -> "Connection refused"; the guide's jq shows the
        # endpoint to fix.
        wrong = f"http://127.0.0.1:{free_port()}"
        server.admin.put("/api/llm-backends/1", json={"endpoint_url": wrong})
        router.invalidate()
        with pytest.raises(BackendUnavailable, match="Connection refused"):
            await router.generate(model="phi3:mini", prompt="hi")
        example = guide_example(seed_guide, "Issue 2", "endpoint_url")
        assert run_example(example, server, headers) == (200, f'"{wrong}"\n')

        # Issue 3: auto with MLX and Ollama both down fails, naming both; the router's log
        # has the fallback attempt the guide greps for.
        server.admin.put("/api/llm-backends/1", json={"backend_type": "auto"})
        down = LLMRouter(admin_url=server.url, ollama_url=wrong, stats_sink=None)
        try:
            with capture_logs() as logs, pytest.raises(BackendUnavailable) as caught:
                await down.generate(model="phi3:mini", prompt="hi")
        finally:
            await down.close()
        assert f"tried after mlx at {wrong} failed" in str(caught.value)
        assert "mlx_failed_falling_back_to_ollama" in [e["event"] for e in logs]

        # Issue 4: the model is not pulled in Ollama -> "model 'phi3:mini' not found".
        server.admin.put(
            "/api/llm-backends/1", json={"backend_type": "ollama", "endpoint_url": fake_ollama.url}
        )
        fake_ollama.configure(models=["llama3.1:8b"])
        router.invalidate()
        with pytest.raises(ModelNotFound, match="model 'phi3:mini' not found"):
            await router.generate(model="phi3:mini", prompt="hi")
        fake_ollama.configure(models=["phi3:mini"])  # `ollama pull phi3:mini`

        # Issue 5: disabled -> the router uses the default Ollama config; the guide's jq
        # prints false, its toggle enables the config again.
        server.admin.put("/api/llm-backends/1", json={"backend_model": "phi3-custom"})
        fake_ollama.configure(models=["phi3:mini", "phi3-custom"])
        server.admin.post("/api/llm-backends/1/toggle")
        router.invalidate()
        with capture_logs() as logs:
            result = await router.generate(model="phi3:mini", prompt="hi")
        assert fake_ollama.requests[-1].body["model"] == "phi3:mini"  # the default config
        assert {"event": "no_backend_config_found", "reason": "disabled"}.items() <= next(
            e for e in logs if e["event"] == "no_backend_config_found"
        ).items()
        check = guide_example(seed_guide, "Issue 5", "jq '.enabled'")
        assert run_example(check, server, headers) == (200, "false\n")
        toggle = guide_example(seed_guide, "Issue 5", "/toggle")
        status, output = run_example(toggle, server, headers)
        assert status == 200 and json.loads(output)["enabled"] is True
        assert run_example(check, server, headers) == (200, "true\n")
        router.invalidate()
        result = await router.generate(model="phi3:mini", prompt="hi")
        assert result["backend"] == "ollama"
        assert fake_ollama.requests[-1].body["model"] == "phi3-custom"  # its own config
        # An unknown model stays 404.
        unknown = server.client().get("/api/llm-backends/model/nope")
        assert unknown.status_code == 404
    finally:
        await router.close()
