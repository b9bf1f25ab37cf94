"""Engine and session factory for the async SQLAlchemy store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from llm_backends.settings import Settings, async_database_url


def ensure_sqlite_directory(database_url: str) -> None:
    """Create the directory of a SQLite file (the state directory, on first use)."""
    scheme, _, rest = database_url.partition("://")
    if not scheme.startswith("sqlite") or not rest.startswith("/"):
        return
    path = rest[1:].split("?", 1)[0]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)


def create_engine(
    database_url: str, *, timeout_seconds: float = 5.0, pool_size: int = 5
) -> AsyncEngine:
    """An engine that fails fast when the database is down (so the API answers 503, not a hang)."""
    url = async_database_url(database_url)
    ensure_sqlite_directory(database_url)
    # Parameters may hold secrets or user data: never put them in logs or error messages.
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "hide_parameters": True}
    if url.startswith("sqlite"):
        # sqlite3's busy timeout: concurrent writers wait for the lock instead of failing.
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(
            pool_size=pool_size,
            max_overflow=pool_size * 2,
            pool_timeout=timeout_seconds,
            connect_args={"timeout": timeout_seconds, "command_timeout": timeout_seconds},
        )
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside a writer; foreign keys on for good measure."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def engine_from_settings(settings: Settings) -> AsyncEngine:
    return create_engine(
        settings.database_url,
        timeout_seconds=settings.db_timeout_seconds,
        pool_size=settings.db_pool_size,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
