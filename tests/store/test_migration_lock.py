"""Two `llm-backends migrate` processes at once on a fresh PostgreSQL database: both wait on
the migration advisory lock, then one migrates and the other finds the database at head."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator

import asyncpg
import pytest

from llm_backends.store.migrate import MIGRATION_LOCK_KEY
from tests.conftest import _postgres, _postgres_url

pytestmark = pytest.mark.postgres


@pytest.fixture
async def fresh_database() -> AsyncIterator[str]:
    name = f"llmb_lock_{secrets.token_hex(4)}"
    await _postgres(f'CREATE DATABASE "{name}"')
    try:
        yield _postgres_url(name)
    finally:
        await _postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def waiting_on_lock(connection: asyncpg.Connection, database: str) -> int:
    return await connection.fetchval(
        "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = $1",
        database,
    )


async def test_two_concurrent_migrations_are_safe(fresh_database: str) -> None:
    database = fresh_database.rsplit("/", 1)[1]
    holder = await asyncpg.connect(fresh_database)
    try:
        # Hold the migrations' lock so both processes are certainly inside the race window.
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        env = {**os.environ, "DATABASE_URL": fresh_database}
        migrators = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "llm_backends.cli",
                "migrate",
                env=env,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            for _ in range(2)
        ]
        for _ in range(1200):  # 60 s at most: both processes are blocked on the lock
            if await waiting_on_lock(holder, database) == 2:
                break
            await asyncio.sleep(0.05)
        assert await waiting_on_lock(holder, database) == 2
        assert all(process.returncode is None for process in migrators)
        await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)

        async with asyncio.timeout(60):
            outputs = [(await process.communicate())[0].decode() for process in migrators]
        assert [process.returncode for process in migrators] == [0, 0], outputs
        assert all("Database migrated to head." in output for output in outputs)
        versions = await holder.fetch("SELECT version_num FROM alembic_version")
        assert len(versions) == 1
        tables = await holder.fetchval(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_name IN ('llm_backends', 'api_tokens')"
        )
        assert tables == 2
    finally:
        await holder.close()
