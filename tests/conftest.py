"""Shared fixtures: a real database (SQLite and PostgreSQL) and a live server on loopback."""

from __future__ import annotations

import asyncio
import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm_backends.app import create_app
from llm_backends.serving import SERVER_OPTIONS
from llm_backends.settings import Settings
from llm_backends.store import migrate
from llm_backends.store.db import create_engine, session_factory
from llm_backends.store.models import ApiToken, AuditEntry, LLMBackend
from tests.fakes.fixtures import *  # noqa: F403  (fake Ollama/OpenAI servers, real mlx_lm.server)
from tests.fakes.server import ServerThread


def pytest_configure(config: pytest.Config) -> None:
    """No test writes into the real state directory (~/.local/share/llm-backends): every
    Settings(), CLI call and served process of this run uses a temporary one instead."""
    os.environ["LLM_BACKENDS_HOME"] = tempfile.mkdtemp(prefix="llmb-home-")
    os.environ.pop("SECRET_KEY", None)


POSTGRES_ADMIN_DSN = os.environ.get(
    "TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test"
)


def _postgres_url(database: str) -> str:
    base, _, _ = POSTGRES_ADMIN_DSN.rpartition("/")
    return f"{base}/{database}"


async def _postgres(statement: str) -> None:
    connection = await asyncpg.connect(POSTGRES_ADMIN_DSN, timeout=5)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    name = f"llmb_test_{secrets.token_hex(4)}"
    try:
        asyncio.run(_postgres(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as error:
        pytest.fail(
            f"PostgreSQL at {POSTGRES_ADMIN_DSN} is not usable ({error}); start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`"
        )
    url = _postgres_url(name)
    migrate.upgrade(url)
    yield url
    asyncio.run(_postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'store.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture(
    scope="session",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def database_url(request: pytest.FixtureRequest) -> str:
    """Every test that uses the store runs once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_database" if request.param == "sqlite" else "postgres_database"
    return request.getfixturevalue(fixture)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory over an emptied store."""
    engine = create_engine(database_url)
    factory = session_factory(engine)
    async with factory() as session:
        if database_url.startswith("postgresql"):
            # Ids restart at 1, as the seed guide's examples expect of a new database.
            await session.execute(
                text("TRUNCATE llm_backends, api_tokens, audit_log RESTART IDENTITY")
            )
        else:
            await session.execute(delete(LLMBackend))
            await session.execute(delete(ApiToken))
            await session.execute(delete(AuditEntry))
        await session.commit()
    yield factory
    await engine.dispose()


@dataclass
class LiveServer:
    url: str
    token: str
    settings: Settings
    thread: ServerThread

    def client(self, token: str | None = None, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    @property
    def admin(self) -> httpx.Client:
        return self.client(self.token)


def make_settings(default_database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": default_database_url,
        "admin_api_token": "test-bootstrap-" + secrets.token_hex(8),
        "log_json": True,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@contextmanager
def server_starter(database_url: str) -> Iterator[Callable[..., LiveServer]]:
    """`start(**settings_overrides)` runs the real app with uvicorn on a free port."""
    started: list[ServerThread] = []

    def start(**overrides: object) -> LiveServer:
        settings = make_settings(database_url, **overrides)
        thread = ServerThread(create_app(settings), **SERVER_OPTIONS).start()
        started.append(thread)
        token = settings.admin_api_token.get_secret_value() if settings.admin_api_token else ""
        return LiveServer(url=thread.url, token=token, settings=settings, thread=thread)

    try:
        yield start
    finally:
        for thread in started:
            thread.stop()


@pytest.fixture
def start_server(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> Iterator[Callable[..., LiveServer]]:
    """On an emptied store (SQLite and PostgreSQL): `start_server(**settings_overrides)`."""
    with server_starter(database_url) as start:
        yield start


@pytest.fixture
def live_server(start_server) -> LiveServer:  # type: ignore[no-untyped-def]
    return start_server()


@pytest.fixture(scope="session")
def seed_guide() -> Path:
    return Path(__file__).parent / "data" / "llm-backend-config.md"
