"""A real `llm-backends serve` process with a write (bootstrap) token and a read token, for
the admin page and the HTTP CLI, plus an environment for CLI runs against it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.served import ServedProcess, serve_process


@dataclass
class OperatorServer:
    process: ServedProcess
    write_token: str
    read_token: str
    env: dict[str, str]

    @property
    def url(self) -> str:
        return self.process.url

    def cli_env(self, token: str | None = None) -> dict[str, str]:
        """What a CLI user on another machine sets: the URL and a token."""
        return {
            **self.env,
            "ADMIN_API_URL": self.url,
            "ADMIN_API_TOKEN": token or self.write_token,
        }


def create_token(env: dict[str, str], scope: str, name: str) -> str:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "llm_backends.cli",
            "token",
            "create",
            "--scope",
            scope,
            "--name",
            name,
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


@contextmanager
def operator_server(tmp_path: Path, ollama_url: str) -> Iterator[OperatorServer]:
    write_token = "llmb_bootstrap_" + secrets.token_hex(16)
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'operator.db'}",
        "LLM_BACKENDS_HOME": str(tmp_path / "home"),
        "TOKEN_FILE": str(tmp_path / "no-token-file"),
        "OLLAMA_URL": ollama_url,
        # Stats reach the table (and `backends list`) within a second.
        "METRICS_REPORT_INTERVAL": "0.5",
        "HEALTH_CHECK_INTERVAL": "0.5",
    }
    read_token = create_token(env, "llm_backends:read", "viewer")
    env_with_bootstrap = {**env, "ADMIN_API_TOKEN": write_token}
    with serve_process(env_with_bootstrap) as process:
        yield OperatorServer(process, write_token, read_token, env)
