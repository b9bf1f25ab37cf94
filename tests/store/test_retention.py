"""Audit retention (`AUDIT_RETENTION_DAYS`): old entries go, at start and on every round."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.testing import capture_logs

from llm_backends.store import audit
from llm_backends.store.db import create_engine, session_factory
from llm_backends.store.models import AuditEntry, utcnow
from llm_backends.store.retention import AuditPruner, start_audit_pruner
from tests.conftest import LiveServer

Sessions = async_sessionmaker[AsyncSession]


async def add_entry(sessions: Sessions, name: str, age: timedelta) -> None:
    async with sessions() as session:
        entry = audit.record(
            session, audit.SYSTEM, "backend.create", audit.Target("backend", 1, name), {}
        )
        entry.at = utcnow() - age
        await session.commit()


async def models_left(sessions: Sessions) -> list[str | None]:
    async with sessions() as session:
        rows = await session.scalars(select(AuditEntry).order_by(AuditEntry.at))
        return [row.target_model_name for row in rows]


async def test_prune_deletes_only_what_is_older_than_the_cut(sessions: Sessions) -> None:
    await add_entry(sessions, "old", timedelta(days=40))
    await add_entry(sessions, "recent", timedelta(days=10))
    await add_entry(sessions, "now", timedelta(0))
    async with sessions() as session:
        assert await audit.prune(session, utcnow() - timedelta(days=30)) == 1
    assert await models_left(sessions) == ["recent", "now"]
    async with sessions() as session:  # again: nothing more is that old
        assert await audit.prune(session, utcnow() - timedelta(days=30)) == 0


async def test_a_pruner_round_logs_what_it_removed(sessions: Sessions) -> None:
    await add_entry(sessions, "old", timedelta(days=8))
    await add_entry(sessions, "older", timedelta(days=9))
    pruner = AuditPruner(sessions, days=7)
    with capture_logs() as events:
        assert await pruner.prune_once() == 2
        assert await pruner.prune_once() == 0  # a round with nothing to do says nothing
    pruned = [e for e in events if e["event"] == "audit_pruned"]
    assert pruned == [
        {"event": "audit_pruned", "removed": 2, "retention_days": 7, "log_level": "info"}
    ]


async def test_zero_days_keeps_entries_forever(sessions: Sessions) -> None:
    assert await start_audit_pruner(sessions, 0) is None


async def test_a_failed_round_is_logged_and_the_pruner_keeps_running(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = create_engine(f"sqlite:///{tmp_path / 'not-migrated.db'}")  # no audit_log table
    try:
        with capture_logs() as events:
            pruner = await start_audit_pruner(session_factory(engine), 30)
        assert pruner is not None
        assert [e["event"] for e in events] == ["audit_prune_failed"]
        assert events[0]["error"] == "OperationalError"
        assert pruner._task is not None and not pruner._task.done()
        await pruner.stop()
    finally:
        await engine.dispose()


async def test_a_server_prunes_at_start(
    sessions: Sessions, start_server: Callable[..., LiveServer]
) -> None:
    await add_entry(sessions, "last-year", timedelta(days=365))
    await add_entry(sessions, "last-week", timedelta(days=7))
    server = start_server(audit_retention_days=30)
    assert await models_left(sessions) == ["last-week"]
    async with httpx.AsyncClient(base_url=server.url) as client:
        answer = await client.get("/api/audit", headers={"Authorization": f"Bearer {server.token}"})
    assert [item["target"]["model_name"] for item in answer.json()["items"]] == ["last-week"]
