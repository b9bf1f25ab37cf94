"""The `llm-backends` command: serve, migrate, and manage API tokens."""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
import uvicorn

from llm_backends import startup
from llm_backends.admin.auth import Scope
from llm_backends.logs import configure_logging
from llm_backends.settings import Settings
from llm_backends.store import migrate as migrations
from llm_backends.store import tokens
from llm_backends.store.db import engine_from_settings, session_factory

app = typer.Typer(help="Self-hosted LLM backend router.", no_args_is_help=True)
token_app = typer.Typer(help="Create, list and revoke Admin API tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")

T = TypeVar("T")


def _with_sessions(settings: Settings, work: Callable[..., Awaitable[T]]) -> T:
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
) -> None:
    """Start the Admin API and the gateway."""
    from llm_backends.app import create_app

    settings = Settings()
    startup.check_port_free(host or settings.host, port or settings.port)
    configure_logging(
        settings.log_level, settings.log_json, flush_interval=settings.log_flush_interval
    )
    if migrate:
        migrations.upgrade(settings.database_url)
    asgi_app = create_app(settings)
    # What start-up made (FastAPI, pydantic and SQLAlchemy structures: ~100k objects) lives
    # as long as the process; out of the collector's sight, a full collection no longer
    # scans it (measured at 32 concurrent requests: p99 ~55 ms -> ~8 ms, CPU -13%).
    gc.collect()
    gc.freeze()
    uvicorn.run(
        asgi_app,
        host=host or settings.host,
        port=port or settings.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=settings.log_level.lower(),
    )


@app.command()
@startup.readable_failures("migrate")
def migrate(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply pending database migrations."""
    migrations.upgrade(Settings().database_url, revision)
    typer.echo(f"Database migrated to {revision}.")


@app.command()
@startup.readable_failures("downgrade")
def downgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "base") -> None:
    """Roll migrations back (default: all of them)."""
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
    settings = Settings()
    migrations.upgrade(settings.database_url)

    async def work(sessions):  # type: ignore[no-untyped-def]
        async with sessions() as session:
            return await tokens.create_token(session, name, [s.value for s in scope])

    row, plain = _with_sessions(settings, work)
    typer.echo(f"Created token {row.id} ({row.name}) with scopes: {row.scopes}")
    typer.echo(plain)


@token_app.command("list")
def token_list() -> None:
    """List tokens (never their values)."""

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

    async def work(sessions):  # type: ignore[no-untyped-def]
        async with sessions() as session:
            return await tokens.revoke_token(session, token_id)

    if not _with_sessions(Settings(), work):
        typer.echo(f"No active token with id {token_id}.", err=True)
        raise typer.Exit(1)
    typer.echo(f"Revoked token {token_id}.")


@token_app.command("ensure")
def token_ensure() -> None:
    """Make sure a local admin token exists (used by `make run`): creates one the first time,
    writes it to TOKEN_FILE (mode 600) and says how to export it. Never prints the token."""
    settings = Settings()
    migrations.upgrade(settings.database_url)
    path = Path(settings.token_file)

    async def work(sessions):  # type: ignore[no-untyped-def]
        async with sessions() as session:
            if await tokens.count_active_tokens(session):
                return None
            return await tokens.create_token(
                session, "local-admin", [Scope.READ.value, Scope.WRITE.value]
            )

    created = _with_sessions(settings, work)
    if created is not None:
        _, plain = created
        path.write_text(plain + "\n")
        os.chmod(path, 0o600)
        typer.echo(f"Created a read/write admin token in {path}.")
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
