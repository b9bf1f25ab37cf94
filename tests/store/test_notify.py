"""The notifier in one process: LISTEN/NOTIFY with reconnects (PostgreSQL), and the version
poll (both databases). Writes come from other sessions, as from another process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm_backends.store import backends as store
from llm_backends.store.events import ConfigChanges
from llm_backends.store.notify import LISTENER_APPLICATION_NAME, ConfigNotifier, listen_dsn
from tests.fakes.tcp_proxy import tcp_proxy

Sessions = async_sessionmaker[AsyncSession]


class Published:
    """What the notifier published, with a way to wait for one."""

    def __init__(self, changes: ConfigChanges) -> None:
        self.names: list[str | None] = []
        self._event = asyncio.Event()
        changes.subscribe(self._on)

    def _on(self, name: str | None) -> None:
        self.names.append(name)
        self._event.set()

    async def until(
        self, predicate: Callable[[list[str | None]], bool], seconds: float = 5
    ) -> None:
        async with asyncio.timeout(seconds):
            while not predicate(self.names):
                self._event.clear()
                await self._event.wait()


@asynccontextmanager
async def running(
    sessions: Sessions, dsn: str | None, poll_seconds: float
) -> AsyncIterator[tuple[ConfigNotifier, Published]]:
    changes = ConfigChanges()
    published = Published(changes)
    notifier = ConfigNotifier(
        sessions, changes, poll_seconds=poll_seconds, listen_dsn=dsn, timeout_seconds=2
    ).start()
    try:
        yield notifier, published
    finally:
        await notifier.stop()


async def write(sessions: Sessions, name: str) -> None:
    async with sessions() as session:
        await store.create_backend(
            session, {"model_name": name, "backend_type": "ollama", "endpoint_url": "http://x"}
        )


def require_postgres(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    dsn = listen_dsn(database_url)
    assert dsn is not None
    return dsn


def test_listen_dsn_drops_the_driver_and_ignores_sqlite() -> None:
    assert (
        listen_dsn("postgresql+asyncpg://u:p%40ss@h:5433/db") == "postgresql://u:p%40ss@h:5433/db"
    )
    assert listen_dsn("postgres://h/db") == "postgresql://h/db"
    assert listen_dsn("sqlite:///x.db") is None


async def test_the_poll_publishes_other_writers_changes(sessions: Sessions) -> None:
    """The whole mechanism on SQLite (and the safety net on PostgreSQL)."""
    async with running(sessions, None, poll_seconds=0.05) as (notifier, published):
        for _ in range(500):  # its first read (publishes nothing)
            if notifier.version is not None:
                break
            await asyncio.sleep(0.01)
        await write(sessions, "polled")
        await published.until(lambda names: "polled" in names)
        assert None not in published.names  # a complete log: only the changed model


@pytest.mark.postgres
async def test_a_notification_arrives_without_any_poll(
    sessions: Sessions, database_url: str
) -> None:
    dsn = require_postgres(database_url)
    async with running(sessions, dsn, poll_seconds=3600) as (notifier, published):
        await asyncio.wait_for(notifier.listening.wait(), 10)
        assert published.names == [None]  # connecting drops everything once
        await write(sessions, "notified")
        await published.until(lambda names: "notified" in names, seconds=2)


@pytest.mark.postgres
async def test_a_terminated_listener_reconnects_and_reloads_everything(
    sessions: Sessions, database_url: str
) -> None:
    dsn = require_postgres(database_url)
    async with running(sessions, dsn, poll_seconds=3600) as (notifier, published):
        await asyncio.wait_for(notifier.listening.wait(), 10)
        admin = await asyncpg.connect(dsn)
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = $1 AND datname = current_database()",
                LISTENER_APPLICATION_NAME,
            )
        finally:
            await admin.close()
        assert killed == 1
        await published.until(lambda names: names.count(None) == 2)  # reconnected: reload all
        await write(sessions, "after-reconnect")
        await published.until(lambda names: "after-reconnect" in names, seconds=2)


@pytest.mark.postgres
async def test_a_change_while_the_listener_is_cut_off_is_not_lost(
    sessions: Sessions, database_url: str
) -> None:
    dsn = require_postgres(database_url)
    url = make_url(dsn)
    with tcp_proxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        async with running(sessions, proxied, poll_seconds=3600) as (notifier, published):
            await asyncio.wait_for(notifier.listening.wait(), 10)
            await asyncio.to_thread(proxy.cut)
            await write(sessions, "while-down")  # its NOTIFY goes nowhere
            await asyncio.sleep(0.5)  # several refused reconnects (backoff from 0.2 s)
            assert "while-down" not in published.names and published.names == [None]
            await asyncio.to_thread(proxy.restore)
            await published.until(lambda names: names.count(None) == 2)
