"""`serve --workers 2`: two worker processes on one port, replaced when they die, drained
together on a signal."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path

import httpx
import orjson
import pytest

from tests.fakes.common import FakeServer
from tests.serving.support import (
    DELAY,
    EXIT_MARGIN,
    GRACE,
    exit_within,
    last_event,
    served,
    server_env,
    stream_request,
)

#: What else a server prints: uvicorn's text lines and Alembic's (before the JSON logging).
#: Text lines that are whole by construction: uvicorn's and Alembic's, and the start-up banner
#: (printed by the supervisor before any worker exists).
TEXT_LINE = re.compile(
    r"(INFO|WARNING|ERROR):\s|Context impl |Will assume |Running upgrade "
    r"|llm-backends \S+ listening"
    r"|  (Admin page|Admin API|API docs|OpenAI API|Ollama API|Database|State dir|Admin token) "
)


def children(pid: int) -> set[int]:
    """The worker processes of supervisor `pid` (Linux /proc; multiprocessing's resource
    tracker, also a child, is not one)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"spawn_main" in command:
                found.add(int(child))
    return found


def wait_for_children(
    pid: int, count: int, timeout: float = 60, gone: int | None = None
) -> set[int]:
    """`count` children, none of them `gone` (a killed one is listed until it is reaped)."""
    deadline = time.monotonic() + timeout
    while len(found := children(pid)) != count or gone in found:
        assert time.monotonic() < deadline, f"{pid} has children {found}, wanted {count}"
        time.sleep(0.05)
    return found


def test_two_workers_serve_and_a_dead_one_is_replaced(
    tmp_path: Path, fake_ollama: FakeServer
) -> None:
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": False}
    with served(server_env(tmp_path, fake_ollama.url), "--workers", "2") as process:
        assert process.process is not None
        workers = wait_for_children(process.pid, 2)
        for _ in range(20):
            assert httpx.post(f"{process.url}/v1/chat/completions", json=chat).status_code == 200

        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        replaced = wait_for_children(process.pid, 2, gone=victim)
        assert victim not in replaced and len(replaced & workers) == 1
        for _ in range(20):  # whichever worker takes the connection answers
            response = httpx.post(f"{process.url}/api/chat", json=chat, timeout=30)
            assert response.status_code == 200
        process.process.send_signal(signal.SIGINT)
        status, _ = exit_within(process, GRACE + EXIT_MARGIN)
    assert status == 0
    assert any("worker_died" in line for line in process.output)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_to_the_supervisor_drains_every_worker_within_the_grace_period(
    tmp_path: Path, fake_ollama: FakeServer, sig: signal.Signals
) -> None:
    fake_ollama.configure(reply="x" * 500, chunks=500, stall=0.2)
    path, body = stream_request("ollama")
    with served(server_env(tmp_path, fake_ollama.url), "--workers", "2") as process:
        assert process.process is not None
        workers = wait_for_children(process.pid, 2)
        with httpx.Client(base_url=process.url, timeout=30) as client:
            with client.stream("POST", path, json=body) as response:
                lines = response.iter_lines()
                received = [next(lines)]
                signalled = time.monotonic()
                process.process.send_signal(sig)
                received += list(lines)
        status, _ = exit_within(process, GRACE + EXIT_MARGIN)
        exited = time.monotonic() - signalled
    assert "shutting down" in str(last_event(received)["error"])
    assert exited < GRACE + EXIT_MARGIN
    assert status == 0
    for pid in workers:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )


async def test_two_workers_log_every_request_once_in_whole_lines(
    tmp_path: Path, fake_ollama: FakeServer
) -> None:
    """Two workers write to one stdout pipe: every line is whole (JSON, or uvicorn's text)."""
    requests = 600
    model = "m" * 200  # long lines: more bytes per flush, more chances to interleave
    chat = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": False}
    env = server_env(tmp_path, fake_ollama.url, LOG_FLUSH_INTERVAL="0.5")
    with served(env, "--workers", "2") as process:
        assert process.process is not None
        wait_for_children(process.pid, 2)
        limits = httpx.Limits(max_connections=16)
        async with httpx.AsyncClient(base_url=process.url, limits=limits, timeout=30) as client:
            semaphore = asyncio.Semaphore(16)

            async def one() -> int:
                async with semaphore:
                    return (await client.post("/api/chat", json=chat)).status_code

            statuses = await asyncio.gather(*(one() for _ in range(requests)))
        assert set(statuses) == {200}
        process.process.send_signal(signal.SIGINT)
        exit_within(process, GRACE + EXIT_MARGIN)
    routed, torn = 0, []
    for line in "".join(process.output).splitlines():
        try:
            routed += orjson.loads(line).get("event") == "routing_llm_request"
        except orjson.JSONDecodeError:
            if not TEXT_LINE.match(line):
                torn.append(line)
    assert torn == []
    assert routed == requests


def test_workers_do_not_outlive_a_killed_supervisor(
    tmp_path: Path, fake_ollama: FakeServer
) -> None:
    with served(server_env(tmp_path, fake_ollama.url), "--workers", "2") as process:
        assert process.process is not None
        workers = wait_for_children(process.pid, 2)
        process.process.kill()
        process.process.wait(10)
        deadline = time.monotonic() + DELAY + EXIT_MARGIN + 1
        while any(Path(f"/proc/{pid}").exists() and not zombie(pid) for pid in workers):
            assert time.monotonic() < deadline, "a worker outlived its supervisor"
            time.sleep(0.05)


def zombie(pid: int) -> bool:
    try:
        return "zombie" in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
