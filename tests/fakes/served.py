"""`llm-backends serve` as a real process on a free port, its output kept for inspection."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from tests.fakes.server import free_port


@dataclass
class ServedProcess:
    url: str
    pid: int
    #: Every line the process printed (stdout and stderr), appended as they arrive.
    output: list[str]
    process: subprocess.Popen[str] | None = None


@contextmanager
def serve_process(
    env: dict[str, str], *args: str, port: int | None = None
) -> Iterator[ServedProcess]:
    """Start the server with `env` over os.environ (and `args` after `serve`); ready once
    uvicorn says it listens. Output is drained by a thread all along: a full pipe would
    block the server's logging. Left running at the end, it is terminated.
    """
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "llm_backends.cli", "serve", "--port", str(port), *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    ready = threading.Event()

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if "Uvicorn running" in line:
                ready.set()
        ready.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    ready.wait(60)
    if process.poll() is not None:
        pytest.fail("server exited before it was ready: " + "".join(output))
    try:
        yield ServedProcess(f"http://127.0.0.1:{port}", process.pid, output, process)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # no lame duck: prompt when idle
        process.wait(40)
        reader.join(10)
