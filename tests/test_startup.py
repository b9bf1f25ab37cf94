"""Start-up mistakes of `llm-backends serve` / `migrate`, as real processes: one line saying
what is wrong and what to do, exit status 1, the traceback only at LOG_LEVEL=DEBUG."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_ADMIN_DSN
from tests.fakes.server import free_port

PG = POSTGRES_ADMIN_DSN.rpartition("/")[0]  # postgresql://postgres@127.0.0.1:5432
HOST_PORT = PG.rpartition("@")[2]


def run(command: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llm_backends.cli", command, *args],
        env={**os.environ, "LOG_LEVEL": "INFO", **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=env.get("CWD"),
    )


def one_line(done: subprocess.CompletedProcess[str], command: str) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    output = (done.stdout + done.stderr).strip().splitlines()
    assert len(output) == 1, output
    prefix = f"llm-backends {command}: cannot start: "
    assert output[0].startswith(prefix), output[0]
    return output[0].removeprefix(prefix)


@pytest.fixture
def missing_database() -> str:
    return f"llmb_missing_{secrets.token_hex(4)}"


COMMANDS = [("migrate", ()), ("serve", ("--port", "0"))]


@pytest.fixture(params=COMMANDS, ids=[c for c, _ in COMMANDS])
def command(request: pytest.FixtureRequest) -> tuple[str, tuple[str, ...]]:
    return request.param


def test_a_postgresql_database_that_does_not_exist(command, missing_database: str) -> None:  # type: ignore[no-untyped-def]
    name, args = command
    url = f"{PG}/{missing_database}"
    line = one_line(run(name, {"DATABASE_URL": url}, *args), name)
    host, port = HOST_PORT.split(":")
    assert line == (
        f'the PostgreSQL database "{missing_database}" does not exist on {HOST_PORT}: '
        f"create it with `createdb -h {host} -p {port} -U postgres {missing_database}` "
        f"(or fix DATABASE_URL={url})"
    )


def test_an_unreachable_database(command) -> None:  # type: ignore[no-untyped-def]
    name, args = command
    port = free_port()
    url = f"postgresql://postgres@127.0.0.1:{port}/x"
    assert one_line(run(name, {"DATABASE_URL": url}, *args), name) == (
        f"cannot connect to the database at 127.0.0.1:{port} (connection refused): start "
        f"PostgreSQL there, or fix the host and port in DATABASE_URL={url}"
    )


def test_wrong_credentials_never_show_the_password(command) -> None:  # type: ignore[no-untyped-def]
    name, args = command
    url = f"postgresql://nobody_{secrets.token_hex(3)}:s3cret-pw@{HOST_PORT}/postgres"
    line = one_line(run(name, {"DATABASE_URL": url}, *args), name)
    user = url.split("//")[1].split(":")[0]
    assert line == (
        f'PostgreSQL at {HOST_PORT} refused the login (role "{user}" does not exist): check '
        f"the user and password in DATABASE_URL=postgresql://{user}:***@{HOST_PORT}/postgres"
    )
    assert "s3cret-pw" not in line


def test_a_wrong_scheme(command) -> None:  # type: ignore[no-untyped-def]
    name, args = command
    line = one_line(run(name, {"DATABASE_URL": "postgress://db/x"}, *args), name)
    assert line == (
        "invalid setting DATABASE_URL: DATABASE_URL must be sqlite or postgresql, got "
        "'postgress' (e.g. sqlite:///llm_backends.db or postgresql://user@host:5432/db)"
    )


def test_a_sqlite_file_in_a_missing_directory(command, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    name, args = command
    url = f"sqlite:///{tmp_path}/no-such-dir/x.db"
    assert one_line(run(name, {"DATABASE_URL": url}, *args), name) == (
        f"cannot open the SQLite database file {tmp_path}/no-such-dir/x.db: check that its "
        f"directory exists and is writable (DATABASE_URL={url})"
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_port_in_use(taken_port: int, tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    assert one_line(run("serve", env, "--port", str(taken_port)), "serve") == (
        f"port {taken_port} on 127.0.0.1 is already in use: stop the process using it, or "
        f"choose another port (PORT={taken_port + 1} or --port {taken_port + 1})"
    )
    assert not (tmp_path / "x.db").exists()  # nothing was done before the check


def test_the_traceback_only_at_debug(missing_database: str) -> None:
    env = {"DATABASE_URL": f"{PG}/{missing_database}", "LOG_LEVEL": "DEBUG"}
    done = run("migrate", env)
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("llm-backends migrate: cannot start:")
    assert "Traceback" not in run("migrate", {**env, "LOG_LEVEL": "INFO"}).stderr
