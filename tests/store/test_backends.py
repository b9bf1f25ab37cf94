"""Queries over llm_backends, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm_backends.store import backends as store
from llm_backends.store.db import create_engine

Sessions = async_sessionmaker[AsyncSession]

PHI = {
    "model_name": "phi3:mini",
    "backend_type": "ollama",
    "endpoint_url": "http://localhost:11434",
}


async def test_create_fills_defaults(sessions: Sessions) -> None:
    async with sessions() as session:
        row = await store.create_backend(session, PHI)
    assert row.id > 0
    assert (row.max_tokens, row.temperature_default, row.timeout_seconds, row.priority) == (
        2048,
        0.7,
        60,
        100,
    )
    assert (row.total_requests, row.total_errors, row.avg_latency_ms) == (0, 0, None)
    assert row.enabled is True
    assert row.created_at.tzinfo is not None and row.created_at == row.updated_at


async def test_duplicate_model_name_is_refused_by_the_database(sessions: Sessions) -> None:
    async with sessions() as session:
        await store.create_backend(session, PHI)
    async with sessions() as session:
        with pytest.raises(store.DuplicateModel, match="already exists for model: phi3:mini"):
            await store.create_backend(session, {**PHI, "backend_type": "mlx"})
        assert len(await store.list_backends(session)) == 1


async def test_concurrent_creates_of_one_model_give_exactly_one_row(sessions: Sessions) -> None:
    async def create() -> str:
        async with sessions() as session:
            try:
                await store.create_backend(session, PHI)
            except store.DuplicateModel:
                return "duplicate"
            return "created"

    outcomes = await asyncio.gather(*(create() for _ in range(20)))
    assert sorted(outcomes).count("created") == 1
    assert outcomes.count("duplicate") == 19


async def test_list_is_ordered_and_filters_enabled(sessions: Sessions) -> None:
    async with sessions() as session:
        for name, enabled in [("zeta", True), ("alpha", False), ("mid", True)]:
            await store.create_backend(session, {**PHI, "model_name": name, "enabled": enabled})
        names = [row.model_name for row in await store.list_backends(session)]
        enabled = [row.model_name for row in await store.list_backends(session, enabled_only=True)]
    assert names == ["alpha", "mid", "zeta"]
    assert enabled == ["mid", "zeta"]


async def test_partial_update_touches_only_given_fields(sessions: Sessions) -> None:
    async with sessions() as session:
        row = await store.create_backend(session, {**PHI, "description": "keep me"})
    async with sessions() as session:
        updated = await store.update_backend(session, row.id, {"backend_type": "mlx"})
    assert updated is not None
    assert updated.backend_type == "mlx"
    assert updated.description == "keep me"
    assert updated.endpoint_url == PHI["endpoint_url"]
    assert updated.updated_at > row.updated_at
    assert updated.created_at == row.created_at


async def test_update_unknown_id_and_rename_conflict(sessions: Sessions) -> None:
    async with sessions() as session:
        first = await store.create_backend(session, PHI)
        await store.create_backend(session, {**PHI, "model_name": "other"})
    async with sessions() as session:
        assert await store.update_backend(session, 999_999, {"enabled": False}) is None
        with pytest.raises(store.DuplicateModel):
            await store.update_backend(session, first.id, {"model_name": "other"})
    async with sessions() as session:
        unchanged = await store.get_backend(session, first.id)
    assert unchanged is not None and unchanged.model_name == "phi3:mini"


async def test_toggle_flips_and_twenty_concurrent_toggles_are_all_applied(
    sessions: Sessions,
) -> None:
    async with sessions() as session:
        row = await store.create_backend(session, PHI)

    async def toggle() -> bool:
        async with sessions() as session:
            toggled = await store.toggle_backend(session, row.id)
            assert toggled is not None
            return toggled.enabled

    results = await asyncio.gather(*(toggle() for _ in range(20)))
    # Every toggle saw a distinct state: ten of them enabled it, ten disabled it.
    assert results.count(True) == 10 and results.count(False) == 10
    async with sessions() as session:
        final = await store.get_backend(session, row.id)
    assert final is not None and final.enabled is True


async def test_delete_returns_model_name_once(sessions: Sessions) -> None:
    async with sessions() as session:
        row = await store.create_backend(session, PHI)
        assert await store.delete_backend(session, row.id) == "phi3:mini"
        assert await store.delete_backend(session, row.id) is None
        assert await store.get_enabled_backend(session, "phi3:mini") is None


async def test_enabled_lookup_ignores_disabled(sessions: Sessions) -> None:
    async with sessions() as session:
        row = await store.create_backend(session, {**PHI, "enabled": False})
        assert await store.get_enabled_backend(session, "phi3:mini") is None
        await store.toggle_backend(session, row.id)
        found = await store.get_enabled_backend(session, "phi3:mini")
    assert found is not None and found.id == row.id


async def test_fold_stats_weights_averages_by_counts(sessions: Sessions) -> None:
    async with sessions() as session:
        await store.create_backend(session, PHI)
        first = store.ModelStatsBatch(
            "phi3:mini",
            requests=4,
            errors=1,
            latency_ms_sum=400.0,
            tokens_per_sec_sum=30.0,
            tokens_per_sec_samples=3,
        )
        assert await store.fold_stats(session, [first]) == 1
        second = store.ModelStatsBatch(
            "phi3:mini",
            requests=6,
            errors=0,
            latency_ms_sum=1600.0,
            tokens_per_sec_sum=120.0,
            tokens_per_sec_samples=6,
        )
        unknown = store.ModelStatsBatch("nobody", requests=1, errors=0, latency_ms_sum=1.0)
        assert await store.fold_stats(session, [second, unknown]) == 1
    async with sessions() as session:
        row = await store.get_enabled_backend(session, "phi3:mini")
    assert row is not None
    assert (row.total_requests, row.total_errors) == (10, 1)
    assert row.avg_latency_ms == pytest.approx(200.0)  # (400 + 1600) / 10
    assert row.avg_tokens_per_sec == pytest.approx(150.0 / 9)  # (10*3 + 120) / 9


async def test_strings_are_stored_verbatim(sessions: Sessions) -> None:
    odd = "mlx-community/Phi-3-mini-4k-instruct-4bit'; DROP TABLE llm_backends;-- ✓ 模型"
    async with sessions() as session:
        await store.create_backend(
            session, {**PHI, "model_name": odd, "description": 'tab\there, ☃ \\ "q"'}
        )
    async with sessions() as session:
        row = await store.get_enabled_backend(session, odd)
    assert row is not None and row.model_name == odd and row.description == 'tab\there, ☃ \\ "q"'


def test_migrations_downgrade_cleanly_and_upgrade_again(database_url: str) -> None:
    from llm_backends.store import migrate

    def tables() -> set[str]:
        async def read() -> set[str]:
            engine = create_engine(database_url)
            async with engine.connect() as connection:
                names = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            await engine.dispose()
            return names

        return asyncio.run(read())

    def columns() -> set[str]:
        async def read() -> set[str]:
            engine = create_engine(database_url)
            async with engine.connect() as connection:
                cols = await connection.run_sync(
                    lambda sync: {c["name"] for c in inspect(sync).get_columns("llm_backends")}
                )
            await engine.dispose()
            return cols

        return asyncio.run(read())

    assert {"llm_backends", "api_tokens"} <= tables()
    migrate.downgrade(database_url, "0001")
    assert "backend_model" not in columns()
    migrate.downgrade(database_url, "base")
    assert not {"llm_backends", "api_tokens"} & tables()
    migrate.upgrade(database_url)
    assert "backend_model" in columns()
