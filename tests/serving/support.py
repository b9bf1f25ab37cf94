"""Helpers for the shutdown and worker tests: real `llm-backends serve` processes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson

from tests.fakes.served import ServedProcess, serve_process

#: Short periods so that the tests stay quick; the behaviour does not depend on their size.
GRACE = 3.0
DELAY = 1.0
#: The issue's bound: a process exits within the grace period plus this, counted from the signal.
EXIT_MARGIN = 2.0


def server_env(tmp_path: Path, ollama_url: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}",
        "ADMIN_API_TOKEN": "serving-tests-bootstrap-0123456789",
        "OLLAMA_URL": ollama_url,
        "SHUTDOWN_GRACE_SECONDS": str(GRACE),
        "SHUTDOWN_DELAY_SECONDS": str(DELAY),
        "METRICS_REPORT_INTERVAL": "3600",
        "LOG_JSON": "true",
        **extra,
    }


def wait_ready(url: str, timeout: float = 60) -> None:
    """Until `/ready` answers 200 (a worker may still be starting after the bind)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} never became ready")
        time.sleep(0.05)


@contextmanager
def served(env: dict[str, str], *args: str, port: int | None = None) -> Iterator[ServedProcess]:
    with serve_process(env, *args, port=port) as process:
        wait_ready(process.url)
        yield process


def exit_within(process: ServedProcess, seconds: float) -> tuple[int, float]:
    """Wait for the process to exit: its status and how long it took from now."""
    assert process.process is not None
    started = time.monotonic()
    status = process.process.wait(seconds)
    return status, time.monotonic() - started


def stream_request(protocol: str) -> tuple[str, dict[str, object]]:
    if protocol == "openai":
        body = {"model": "slow", "messages": [{"role": "user", "content": "hi"}], "stream": True}
        return "/v1/chat/completions", body
    return "/api/generate", {"model": "slow", "prompt": "hi", "stream": True}


def last_event(lines: list[str]) -> dict[str, object]:
    """The last SSE event or NDJSON line, parsed."""
    payload = [line.removeprefix("data: ") for line in lines if line.strip()]
    return orjson.loads(payload[-1])
