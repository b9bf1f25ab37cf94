"""Config changes made by other processes, turned into `ConfigChanges.publish()` here.

Two paths, both always on:
- PostgreSQL: a dedicated asyncpg connection (not one of the pool's: a pooled connection is
  returned and reused, and PgBouncer's transaction pooling would drop the LISTEN) runs
  `LISTEN llm_backends_changed`. It reconnects with backoff, and after every (re)connect
  publishes "everything changed", because a notification sent while it was down is lost.
- A poll of the config version every `CONFIG_POLL_SECONDS`, over the pool: the safety net of
  the listener, and the whole mechanism on SQLite (several processes on one file converge).

A change is published at most once per path (both track the highest version they handled),
and publishing only drops cached configs, so a change seen by both paths costs one re-read.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import asyncpg
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm_backends.settings import Settings
from llm_backends.store.changes import CHANNEL, Change, changes_since, decode_payload
from llm_backends.store.events import ConfigChanges

log = structlog.get_logger("llm_backends.store")

#: Reconnect delays of the listener: doubling from the first to the last, with jitter.
BACKOFF_FIRST_SECONDS = 0.2
BACKOFF_MAX_SECONDS = 10.0
#: The application_name of the LISTEN connection (find it in pg_stat_activity).
LISTENER_APPLICATION_NAME = "llm-backends-listener"


def listen_dsn(database_url: str) -> str | None:
    """The asyncpg DSN of a PostgreSQL URL (any `+driver` dropped); None for SQLite."""
    url = make_url(database_url)
    if url.get_backend_name() not in ("postgresql", "postgres"):
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


class ConfigNotifier:
    """Publishes other processes' config changes into `changes` (see the module doc)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        changes: ConfigChanges,
        *,
        poll_seconds: float,
        listen_dsn: str | None,
        timeout_seconds: float = 5.0,
    ) -> None:
        self._sessions = sessions
        self._changes = changes
        self._poll_seconds = poll_seconds
        self._listen_dsn = listen_dsn
        self._timeout = timeout_seconds
        #: Highest version handled (None until first read): both paths only move it up.
        self.version: int | None = None
        #: Set while the LISTEN connection is up (tests and the health of the process).
        self.listening = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._connection: Any = None

    def start(self) -> ConfigNotifier:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._poll_forever(), name="config-poll"))
        if self._listen_dsn is not None:
            self._tasks.append(loop.create_task(self._listen_forever(), name="config-listen"))
        return self

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    # -- the poll ------------------------------------------------------------------------

    async def _poll_forever(self) -> None:
        failing = False
        while True:
            try:
                await self.poll_once()
                if failing:
                    log.info("config_poll_recovered", version=self.version)
                failing = False
            except Exception as error:  # the database, or a bug: poll again
                if not failing:
                    log.warning("config_poll_failed", error=f"{type(error).__name__}: {error}")
                failing = True
            await asyncio.sleep(self._poll_seconds)

    async def poll_once(self) -> None:
        """Read the version; publish what changed since the last one handled."""
        async with asyncio.timeout(self._timeout), self._sessions() as session:
            since = self.version
            change_log = await changes_since(session, since if since is not None else 0)
        if since is None or self.version is None:
            # First read: nothing cached predates it that a publish could be owed to.
            self.version = max(self.version or 0, change_log.version)
            return
        if change_log.version == since:
            return
        if not change_log.complete:
            self._publish_all("poll_gap")
        else:
            for change in change_log.changes:
                if change.version > since:
                    self._changes.publish(change.model_name)
        self.version = max(self.version, change_log.version)

    # -- the listener --------------------------------------------------------------------

    async def _listen_forever(self) -> None:
        assert self._listen_dsn is not None
        delay = BACKOFF_FIRST_SECONDS
        attempt = 0
        while True:
            terminated = asyncio.Event()
            try:
                await self._connect(terminated)
                attempt, delay = 0, BACKOFF_FIRST_SECONDS
                await self._watch(terminated)
            except Exception as error:  # any failure: reconnect, never die
                attempt += 1
                if attempt == 1:
                    log.warning(
                        "config_listener_disconnected",
                        error=f"{type(error).__name__}: {error}",
                        retry_in_s=round(delay, 2),
                    )
            finally:
                self.listening.clear()
                await self._close_connection()
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, BACKOFF_MAX_SECONDS)

    async def _connect(self, terminated: asyncio.Event) -> None:
        connection = await asyncpg.connect(
            self._listen_dsn,
            timeout=self._timeout,
            command_timeout=self._timeout,
            server_settings={"application_name": LISTENER_APPLICATION_NAME},
        )
        self._connection = connection
        connection.add_termination_listener(lambda _connection: terminated.set())
        await connection.add_listener(CHANNEL, self._on_notification)
        # LISTEN is active: from here on no change is missed. What changed before (while
        # disconnected, or before start-up) is unknown, so every cached config goes.
        version = await connection.fetchval("SELECT version FROM config_version WHERE id = 1")
        self.version = max(self.version or 0, int(version or 0))
        self._publish_all("listener_connected")
        self.listening.set()
        log.info("config_listener_connected", version=self.version)

    async def _watch(self, terminated: asyncio.Event) -> None:
        """Return (raise) when the connection dies; a silent network loss is found by a ping."""
        while True:
            try:
                async with asyncio.timeout(self._poll_seconds):
                    await terminated.wait()
            except TimeoutError:
                await self._connection.fetchval("SELECT 1", timeout=self._timeout)
                continue
            raise ConnectionResetError("the LISTEN connection was closed")

    async def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()  # no goodbye round trip to a server that may be gone

    def _on_notification(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            decoded = decode_payload(payload)
        except (ValueError, KeyError, TypeError):
            self._publish_all("unreadable_notification")
            return
        changes: tuple[Change, ...] = decoded if isinstance(decoded, tuple) else (decoded,)
        version = changes[0].version
        if self.version is not None and version <= self.version:
            return  # the poll (or an earlier notification) handled it
        for change in changes:
            self._changes.publish(change.model_name)
        self.version = version if self.version is None else max(self.version, version)

    def _publish_all(self, reason: str) -> None:
        log.debug("config_cache_reset", reason=reason)
        self._changes.publish(None)


def start_notifier(
    sessions: async_sessionmaker[AsyncSession], changes: ConfigChanges, *, settings: Settings
) -> ConfigNotifier:
    """Start both paths in the running loop (the listener only on PostgreSQL)."""
    return ConfigNotifier(
        sessions,
        changes,
        poll_seconds=settings.config_poll_seconds,
        listen_dsn=listen_dsn(settings.config_listen_url or settings.database_url),
        timeout_seconds=settings.db_timeout_seconds,
    ).start()
