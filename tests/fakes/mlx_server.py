"""The real `mlx_lm.server`, on a tiny random-weight model, as a subprocess for tests.

Facts this relies on (see make_tiny_mlx_model.py): the byte-level tokenizer makes
`prompt_tokens == len(prompt.encode())` for /v1/completions; the model emits printable ASCII
and never EOS, so `completion_tokens == max_tokens` and `finish_reason == "length"`;
temperature 0 is deterministic. The server must run with HF_HUB_OFFLINE=1 and an HF_HOME
holding an empty `hub/`; its /health answers before the model is loaded, so readiness is a
successful 1-token completion.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tests.fakes.server import free_port

MODEL_WRITER = Path(__file__).with_name("make_tiny_mlx_model.py")
#: Readiness: this many attempts, each a completion (which waits for the model to load)
#: then up to POLL_SECONDS waiting for the process to exit. Loading takes a few seconds.
READY_ATTEMPTS = 600
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class MLXServer:
    """A running mlx_lm.server. `model_path` is the served model (a valid `model` value)."""

    url: str
    model_path: Path
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes]

    def log_tail(self, size: int = 4000) -> str:
        return self.log_path.read_bytes()[-size:].decode("utf-8", "replace")


def mlx_unavailable_reason() -> str | None:
    """Why the real server can't run here, or None if it can."""
    try:
        import mlx.core  # noqa: F401
        import mlx_lm.server  # noqa: F401
    except ImportError as exc:  # plain `mlx` without the [cpu] extra fails here on Linux
        return f"mlx / mlx-lm not importable ({exc}); install the project's `mlx` extra"
    return None


def write_model(directory: Path) -> Path:
    """Write the tiny model into `directory` (a fresh subprocess: the writer is a script)."""
    subprocess.run(
        [sys.executable, str(MODEL_WRITER), str(directory)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return directory


def start_mlx_server(workdir: Path) -> MLXServer:
    """Write the model under `workdir`, start the server, return once it generates."""
    model_path = write_model(workdir / "tiny")
    hf_home = workdir / "hf-home"
    (hf_home / "hub").mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "HF_HOME": str(hf_home),
    }
    port = free_port()
    log_path = workdir / "server.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlx_lm.server",
            "--model",
            str(model_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "INFO",
        ],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    server = MLXServer(f"http://127.0.0.1:{port}", model_path, process, log_path, log_file)
    try:
        _wait_until_generating(server)
    except BaseException:
        stop_mlx_server(server)
        raise
    return server


def stop_mlx_server(server: MLXServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=10)
    server.log_file.close()


def _wait_until_generating(server: MLXServer) -> None:
    """Poll a 1-token completion; between attempts, wait on the process (it may have died)."""
    request = urllib.request.Request(
        f"{server.url}/v1/completions",
        data=b'{"prompt": "hi", "max_tokens": 1}',
        headers={"Content-Type": "application/json"},
    )
    for _ in range(READY_ATTEMPTS):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass  # not listening yet, or the model is still loading
        try:
            server.process.wait(timeout=POLL_SECONDS)
        except subprocess.TimeoutExpired:
            continue
        raise RuntimeError(
            f"mlx_lm.server exited with {server.process.returncode}:\n{server.log_tail()}"
        )
    raise RuntimeError(
        f"mlx_lm.server not generating after {READY_ATTEMPTS} attempts:\n{server.log_tail()}"
    )
