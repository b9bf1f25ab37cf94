"""The CLI's commands that work over HTTP (`backends`, `run`, `ps`, `check`, `audit`), so they
manage a remote server as well as the local one. `register(app)` adds them to `llm-backends`."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from llm_backends.cli_commands import backends
from llm_backends.cli_commands.audit import audit
from llm_backends.cli_commands.chat import run
from llm_backends.cli_commands.health import check, ps


def package_version() -> str:
    try:
        return version("llm-backends")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"llm-backends {package_version()}")
        raise typer.Exit()


def _main(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Self-hosted LLM backend router. The HTTP commands use ADMIN_API_URL and ADMIN_API_TOKEN
    (else the token file)."""


def register(app: typer.Typer) -> None:
    app.callback()(_main)
    app.add_typer(backends.app, name="backends")
    app.command()(run)
    app.command()(ps)
    app.command()(check)
    app.command()(audit)
