"""One readable line for what stops `llm-backends serve` / `migrate` from starting.

A database that does not exist, is unreachable, refuses the credentials, a DATABASE_URL with
a wrong scheme, a port already in use: each used to end in hundreds of lines of traceback
with the useful line last. `readable_failures` turns each into one line on stderr saying
what is wrong and what to do, and exit status 1; the traceback is printed only with
LOG_LEVEL=DEBUG. Credentials never appear in the line (URLs are shown without password).
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import click
import pydantic
import typer

from llm_backends.settings import LogLevelSetting, Settings

if TYPE_CHECKING:  # SQLAlchemy is imported where a URL is parsed: the CLI starts without it
    from sqlalchemy.engine import URL

P = ParamSpec("P")
T = TypeVar("T")

#: PostgreSQL SQLSTATEs: database missing; bad user, bad password.
_NO_DATABASE = "3D000"
_BAD_LOGIN = ("28000", "28P01")


class PortInUse(OSError):
    """Raised by `check_port_free`."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(errno.EADDRINUSE, f"port {port} on {host} is already in use")
        self.port = port


def check_port_free(host: str, port: int) -> None:
    """Fail before migrating and loading the app when another process holds the port (the
    way uvicorn binds: SO_REUSEADDR, so only a live listener counts)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUse(host, port) from None
            raise


class SqliteDirectoryMissing(OSError):
    """Raised by `check_sqlite_directory`."""


def check_sqlite_directory(database_url: str) -> None:
    """A SQLite file's directory must exist. Checked up front: the driver's own failure
    leaves a worker thread that prints a traceback of its own as the loop closes."""
    from sqlalchemy.engine import make_url

    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    directory = os.path.dirname(os.path.abspath(url.database))
    if not os.path.isdir(directory):
        raise SqliteDirectoryMissing(errno.ENOENT, "unable to open database file", url.database)


#: Exits that are not start-up failures: an exit status chosen by the command, a "no" to a
#: confirmation, a usage error (typer 0.29 has its own Exit and Abort beside click's).
_NOT_FAILURES: tuple[type[BaseException], ...] = (
    typer.Exit,
    typer.Abort,
    click.exceptions.Exit,
    click.exceptions.Abort,
    click.ClickException,
    KeyboardInterrupt,
)


def readable_failures(command: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a CLI command: a start-up failure is one line and exit status 1."""

    def decorate(function: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                check_sqlite_directory(Settings().database_url)
                return function(*args, **kwargs)
            except _NOT_FAILURES:
                raise
            except Exception as error:
                if _debug():
                    traceback.print_exc()
                line = " ".join(explain(error).split())  # one line, whatever the message
                print(f"llm-backends {command}: cannot start: {line}", file=sys.stderr)
                sys.exit(1)

        return wrapper

    return decorate


def explain(error: BaseException) -> str:
    """What is wrong and what to do, for the failures a new user makes; else the error."""
    if isinstance(error, pydantic.ValidationError):
        return _invalid_settings(error)
    if isinstance(error, PortInUse):
        return (
            f"{error.strerror}: stop the process using it, or choose another port "
            f"(PORT={error.port + 1} or --port {error.port + 1})"
        )
    url = _database_url()
    for cause in _causes(error):
        message = _database_problem(cause, url)
        if message:
            return message
    return f"{type(error).__name__}: {error} (LOG_LEVEL=DEBUG shows the traceback)"


def _database_problem(cause: BaseException, url: URL | None) -> str | None:
    where = _where(url)
    shown = url.render_as_string(hide_password=True) if url is not None else "DATABASE_URL"
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate == _NO_DATABASE and url is not None:
        return (
            f'the PostgreSQL database "{url.database}" does not exist on {where}: create it '
            f"with `createdb -h {url.host or 'localhost'} -p {url.port or 5432} "
            f"-U {url.username or 'postgres'} {url.database}` (or fix DATABASE_URL={shown})"
        )
    if sqlstate in _BAD_LOGIN:
        return (
            f"PostgreSQL at {where} refused the login ({_first_line(cause)}): check the user "
            f"and password in DATABASE_URL={shown}"
        )
    if isinstance(cause, socket.gaierror):
        host = url.host if url is not None else "?"
        return f'cannot resolve the database host "{host}" ({cause}): check DATABASE_URL={shown}'
    if isinstance(cause, ConnectionRefusedError):
        return (
            f"cannot connect to the database at {where} (connection refused): start "
            f"PostgreSQL there, or fix the host and port in DATABASE_URL={shown}"
        )
    if isinstance(cause, TimeoutError):
        return (
            f"no answer from the database at {where} (timed out): check that it runs and "
            f"that DATABASE_URL={shown} points at it"
        )
    if "unable to open database file" in str(cause) and url is not None:
        return (
            f"cannot open the SQLite database file {url.database}: check that its directory "
            f"exists and is writable (DATABASE_URL={shown})"
        )
    return None


def _invalid_settings(error: pydantic.ValidationError) -> str:
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item.get("loc", ())).upper() or "settings"
        message = str(item.get("msg", "invalid")).removeprefix("Value error, ")
        if field == "DATABASE_URL":
            message += " (e.g. sqlite:///llm_backends.db or postgresql://user@host:5432/db)"
        problems.append(f"invalid setting {field}: {message}")
    return "; ".join(problems)


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The error, what it wraps (SQLAlchemy's `.orig`) and what caused it, depth first."""
    seen: set[int] = set()
    stack: list[BaseException] = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nested in (current.__context__, current.__cause__, getattr(current, "orig", None)):
            if isinstance(nested, BaseException):
                stack.append(nested)


def _database_url() -> URL | None:
    from sqlalchemy.engine import make_url

    try:
        return make_url(Settings().database_url)
    except Exception:
        return None


def _where(url: URL | None) -> str:
    if url is None:
        return "DATABASE_URL"
    return f"{url.host or 'localhost'}:{url.port or 5432}"


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _debug() -> bool:
    try:
        return LogLevelSetting().log_level.upper() == "DEBUG"
    except Exception:
        return False
