"""The `llm-backends` command: serve, migrate, and manage API tokens.

The database, migration and server modules (SQLAlchemy, Alembic, FastAPI) are imported by the
commands that use them: `--help` and the Admin API client commands start without them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from llm_backends import startup, state
from llm_backends.cli_commands import register as register_http_commands
from llm_backends.scopes import Scope
from llm_backends.settings import Settings

app = typer.Typer(help="Self-hosted LLM backend router.", no_args_is_help=True)
token_app = typer.Typer(help="Create, list and revoke Admin API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")
register_http_commands(app)  # backends, run, ps, check, audit, --version

T = TypeVar("T")


def _upgrade(settings: Settings, revision: str = "head") -> None:
    from llm_backends.store import migrate as migrations

    migrations.upgrade(settings.database_url, revision)


def _with_sessions(settings: Settings, work: Callable[..., Awaitable[T]]) -> T:
    from llm_backends.store.db import engine_from_settings, session_factory

    async def run() -> T:
        engine = engine_from_settings(settings)
        try:
            return await work(session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(run())


@app.command()
@startup.readable_failures("serve")
def serve(
    host: Annotated[
        str | None, typer.Option(help="Interface to bind (default: HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: PORT or 8080).")] = None,
    migrate: Annotated[bool, typer.Option(help="Apply pending migrations first.")] = True,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Server processes sharing the port (default: WORKERS or 1)."),
    ] = None,
) -> None:
    """Start the Admin API and the gateway. SIGTERM/SIGINT drain it (see README, Shutdown)."""
    # Alembic (under store.migrate) logs a "setup plugin" line per plugin as it is imported:
    # imported here, before logging is configured, those lines go nowhere.
    from llm_backends import serving
    from llm_backends.banner import banner
    from llm_backends.logs import configure_logging
    from llm_backends.store import migrate as migrations

    settings = Settings()
    startup.check_port_free(host or settings.host, port or settings.port)
    configure_logging(
        settings.log_level, settings.log_json, flush_interval=settings.log_flush_interval
    )
    if migrate:  # once, before any worker starts
        migrations.upgrade(settings.database_url)
    typer.echo(banner(settings, host or settings.host, port or settings.port), err=True)
    status = serving.serve(
        settings, host or settings.host, port or settings.port, workers or settings.workers
    )
    if status:
        raise typer.Exit(status)


@app.command()
@startup.readable_failures("migrate")
def migrate(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply pending database migrations."""
    _upgrade(Settings(), revision)
    typer.echo(f"Database migrated to {revision}.")


@app.command()
@startup.readable_failures("downgrade")
def downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "base",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask first.")] = False,
) -> None:
    """Roll migrations back (default: all of them, which drops every table)."""
    if not yes:
        typer.confirm(f"Roll the database back to {revision}? Data may be lost", abort=True)
    from llm_backends.store import migrate as migrations

    migrations.downgrade(Settings().database_url, revision)
    typer.echo(f"Database downgraded to {revision}.")


ScopeOption = Annotated[
    list[Scope],
    typer.Option("--scope", help="A permission; repeat for several. Write implies read."),
]


@token_app.command("create")
def token_create(
    scope: ScopeOption,
    name: Annotated[str, typer.Option(help="A label to recognise the token by.")] = "token",
) -> None:
    """Create a token. It is printed once, as the last line; only its hash is stored."""
    from llm_backends.store import tokens

    settings = Settings()
    _upgrade(settings)

    async def work(sessions):  # type: ignore[no-untyped-def]
        async with sessions() as session:
            return await tokens.create_token(session, name, [s.value for s in scope])

    row, plain = _with_sessions(settings, work)
    typer.echo(f"Created token {row.id} ({row.name}) with scopes: {row.scopes}")
    typer.echo(plain)


@token_app.command("list")
def token_list() -> None:
    """List tokens (never their values)."""
    from llm_backends.store import tokens

    async def work(sessions):  # type: ignore[no-untyped-def]
        async with sessions() as session:
            return await tokens.list_tokens(session)

    for row in _with_sessions(Settings(), work):
        state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "active"
        typer.echo(f"{row.id}\t{row.name}\t{row.scopes}\t{state}")


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The id shown by `token list`.")],
) -> None:
    """Revoke a token: it stops working at once."""
    from llm_backends.store import tokens

    async def work(sessions):  # type: ignore[no-untyped-def]
        async with sessions() as session:
            return await tokens.revoke_token(session, token_id)

    if not _with_sessions(Settings(), work):
        typer.echo(f"No active token with id {token_id}.", err=True)
        raise typer.Exit(1)
    typer.echo(f"Revoked token {token_id}.")


#: The token `make run` creates: everything an operator on this machine needs (a library
#: router reading the token file gets backends' api_keys and reports stats with it).
LOCAL_ADMIN_SCOPES = [Scope.READ.value, Scope.WRITE.value, Scope.TOKENS.value, Scope.SECRETS.value]


@token_app.command("ensure")
def token_ensure() -> None:
    """Make sure a local admin token exists (used by `make run`): creates one the first time,
    writes it to TOKEN_FILE (mode 600) and says how to export it. Never prints the token."""
    from llm_backends.store import tokens

    settings = Settings()
    _upgrade(settings)
    path = Path(settings.token_file)

    async def work(sessions):  # type: ignore[no-untyped-def]
        async with sessions() as session:
            if await tokens.count_active_tokens(session):
                return None
            return await tokens.create_token(session, "local-admin", LOCAL_ADMIN_SCOPES)

    created = _with_sessions(settings, work)
    if created is not None:
        _, plain = created
        state.write_token_file(path, plain)
        typer.echo(f"Created a local admin token in {path.resolve()}.")
    if path.exists():
        typer.echo(f"Use it with:  export TOKEN=$(cat {path.resolve()})")
    elif settings.admin_api_token is not None:
        typer.echo("Use the ADMIN_API_TOKEN you set:  export TOKEN=$ADMIN_API_TOKEN")
    else:
        typer.echo(
            "A token already exists. Another: llm-backends token create --scope llm_backends:write"
        )


if __name__ == "__main__":
    app()
