"""The process-wide router, the `shared.llm_router` import path and the seed's examples."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from llm_backends.router import core
from tests.fakes.common import FakeServer
from tests.router.support import MODEL, FakeAdmin, token

SEED_GUIDE = Path(__file__).parents[1] / "data" / "llm-backend-config.md"


@pytest.fixture
def fresh_singleton(monkeypatch: pytest.MonkeyPatch) -> list[core.LLMRouter]:
    """No router yet; constructions are recorded (and slowed, to widen any race window)."""
    made: list[core.LLMRouter] = []

    class SlowRouter(core.LLMRouter):
        def __init__(self, settings: core.Settings) -> None:
            time.sleep(0.01)
            super().__init__(settings=settings, stats_sink=None)
            made.append(self)

    monkeypatch.setattr(core, "_router", None)
    monkeypatch.setattr(core, "LLMRouter", SlowRouter)
    # The test process keeps its logging as it is (what get_llm_router sets up is tested in
    # a fresh interpreter below).
    monkeypatch.setattr(core, "configure_logging_unless_configured", lambda *_args: None)
    return made


def test_same_router_from_20_threads(fresh_singleton: list[core.LLMRouter]) -> None:
    barrier = threading.Barrier(20)
    seen: list[core.LLMRouter] = []

    def call() -> None:
        barrier.wait()
        seen.append(core.get_llm_router())

    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 20
    assert len(fresh_singleton) == 1
    assert all(router is fresh_singleton[0] for router in seen)


async def test_same_router_from_20_tasks(fresh_singleton: list[core.LLMRouter]) -> None:
    async def call() -> core.LLMRouter:
        await asyncio.sleep(0)
        return core.get_llm_router()

    routers = await asyncio.gather(*(call() for _ in range(20)))
    assert len(fresh_singleton) == 1
    assert all(router is routers[0] for router in routers)


def test_shared_import_path_is_an_alias() -> None:
    import llm_backends
    from shared import llm_router
    from shared.llm_router import LLMRouter, get_llm_router

    assert get_llm_router is llm_backends.get_llm_router
    assert LLMRouter is llm_backends.LLMRouter
    assert llm_router.LLMRouterError is llm_backends.LLMRouterError
    # A namespace-package portion: no shared/__init__.py, so others may add shared.* modules.
    import shared

    assert getattr(shared, "__file__", None) is None


def seed_examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", SEED_GUIDE.read_text(), re.DOTALL)


def run_script(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter configured by `env` only (no .env file around)."""
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith(("ADMIN_", "OLLAMA"))}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("index", range(3))
def test_seed_python_examples_run_verbatim(
    index: int,
    tmp_path: Path,
    fake_admin: FakeAdmin,
    fake_ollama: FakeServer,
    fake_openai: FakeServer,
) -> None:
    examples = seed_examples()
    assert len(examples) == 3
    code = examples[index]
    wants_mlx = "test_mlx" in code
    if wants_mlx:
        fake_admin.add(MODEL, "mlx", fake_openai.url)
    else:
        fake_admin.add(MODEL, "ollama", fake_ollama.url)
    fake_ollama.configure(reply="2 + 2 equals 4.")
    done = run_script(code, tmp_path, ADMIN_API_URL=fake_admin.url, OLLAMA_URL="http://127.0.0.1:9")
    assert done.returncode == 0, done.stderr
    if index == 0:
        assert "Response: 2 + 2 equals 4.\nBackend: ollama\n" in done.stdout
        # The script never configured logging: get_llm_router() gave it llm-backends' JSON
        # lines, written (and flushed at exit) after the script's own output.
        lines = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
        events = [x["event"] for x in lines]
        assert events == ["llm_stats_reporting_disabled", "routing_llm_request"]
        assert lines[1]["backend"] == "ollama" and lines[1]["model"] == MODEL
    elif wants_mlx:
        assert "Backend: mlx" in done.stdout
    else:
        assert "✓ Generation successful: ollama" in done.stdout
    # One lookup, and maybe one more: the change feed's first answer revalidates (behind the
    # request) what was cached before it, in case it changed in between.
    assert fake_admin.state.lookups[0] == "/api/llm-backends/model/phi3%3Amini"
    assert set(fake_admin.state.lookups) == {"/api/llm-backends/model/phi3%3Amini"}
    assert len(fake_admin.state.lookups) <= 2
    assert fake_admin.state.feed_polls, "the script followed the change feed"
    # The script never closes the router: the loop guard must have closed the pool.
    assert "Unclosed" not in done.stderr + done.stdout


def test_router_survives_loops_and_reports_at_loop_end(
    tmp_path: Path, fake_admin: FakeAdmin, fake_ollama: FakeServer
) -> None:
    """Two asyncio.run() in one script: the one router rebinds, and stats reach the Admin API
    at each loop's end although nobody calls close()."""
    fake_admin.add(MODEL, "ollama", fake_ollama.url)
    secret = token()
    code = (
        "import asyncio\n"
        "from llm_backends import get_llm_router\n"
        "async def main():\n"
        f"    r = await get_llm_router().generate({MODEL!r}, 'hi')\n"
        "    print(r['backend'])\n"
        "asyncio.run(main())\n"
        "asyncio.run(main())\n"
    )
    done = run_script(code, tmp_path, ADMIN_API_URL=fake_admin.url, ADMIN_API_TOKEN=secret)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("ollama\n") == 2
    assert "Unclosed" not in done.stderr + done.stdout
    assert len(fake_admin.state.reports) == 2
    for headers, body in fake_admin.state.reports:
        assert headers["authorization"] == f"Bearer {secret}"
        assert body["stats"][0]["requests"] == 1
