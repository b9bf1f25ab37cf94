"""The config version and change log, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm_backends.store import backends as store
from llm_backends.store import changes
from llm_backends.store.changes import Change, ChangeLog, changes_since, current_version

Sessions = async_sessionmaker[AsyncSession]


async def version(sessions: Sessions) -> int:
    async with sessions() as session:
        return await current_version(session)


async def test_concurrent_writes_get_contiguous_versions(sessions: Sessions) -> None:
    """Twenty writers at once: every version 1..20 after the start is logged exactly once, in
    commit order (the version row's lock serialises them), so the log is complete."""
    start = await version(sessions)

    async def create(index: int) -> None:
        async with sessions() as session:
            await store.create_backend(
                session,
                {"model_name": f"m{index}", "backend_type": "ollama", "endpoint_url": "http://x"},
            )

    await asyncio.gather(*(create(i) for i in range(20)))
    async with sessions() as session:
        log = await changes_since(session, start)
    assert log.version == start + 20 and log.complete
    assert sorted(c.version for c in log.changes) == list(range(start + 1, start + 21))
    assert {c.model_name for c in log.changes} == {f"m{i}" for i in range(20)}


async def test_a_failed_write_bumps_nothing(sessions: Sessions) -> None:
    fields = {"model_name": "dup", "backend_type": "ollama", "endpoint_url": "http://x"}
    async with sessions() as session:
        await store.create_backend(session, fields)
    start = await version(sessions)
    async with sessions() as session:
        with pytest.raises(store.DuplicateModel):
            await store.create_backend(session, fields)
        assert await store.toggle_backend(session, 999_999) is None
        assert await store.delete_backend(session, 999_999) is None
        await store.fold_stats(session, [store.ModelStatsBatch("dup", 1, 0, 5.0)])
    assert await version(sessions) == start


async def test_the_log_is_trimmed_and_a_trimmed_answer_says_so(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(changes, "KEEP_VERSIONS", 5)
    monkeypatch.setattr(changes, "TRIM_EVERY", 1)
    start = await version(sessions)
    async with sessions() as session:
        for _ in range(8):
            await changes.record_change(session, "m")
        await session.commit()
        recent = await changes_since(session, start + 6)
        trimmed = await changes_since(session, start)
    assert recent.complete and [c.version for c in recent.changes] == [start + 7, start + 8]
    assert trimmed.version == start + 8 and not trimmed.complete


def test_complete_needs_every_version() -> None:
    assert ChangeLog(3, 3, ()).complete
    assert ChangeLog(3, 5, (Change(4, "a"), Change(5, "b"), Change(5, "c"))).complete
    assert not ChangeLog(3, 5, (Change(5, "b"),)).complete
    assert not ChangeLog(9, 5, ()).complete  # the store is behind the reader


def test_payload_round_trip_and_size_bound() -> None:
    assert changes.decode_payload(changes.encode_payload(7, ["a", "b"])) == (
        Change(7, "a"),
        Change(7, "b"),
    )
    huge = [f"model-{i:04d}-" + "x" * 200 for i in range(100)]
    assert changes.decode_payload(changes.encode_payload(8, huge)) == Change(8, None)
    assert changes.decode_payload(changes.encode_payload(9, [None])) == Change(9, None)


@pytest.mark.postgres
async def test_notify_is_sent_at_commit_and_never_on_rollback(
    sessions: Sessions, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("NOTIFY is PostgreSQL's")
    received: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(database_url)
    await listener.add_listener(changes.CHANNEL, lambda *args: received.put_nowait(args[3]))
    try:
        async with sessions() as session:
            rolled_back = await changes.record_change(session, "gone")
            await session.rollback()
            committed = await changes.record_change(session, "kept")
            assert received.empty()  # not before the commit
            await session.commit()
        payload = await asyncio.wait_for(received.get(), 5)
        assert changes.decode_payload(payload) == (Change(committed, "kept"),)
        assert committed == rolled_back  # the rolled-back bump did not consume a version
        assert received.empty()
    finally:
        await listener.close()
