"""Property tests (hypothesis) of store invariants, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm_backends.admin.schemas import BackendCreate, BackendOut, BackendUpdate
from llm_backends.store import backends as store
from llm_backends.store.db import create_engine, session_factory

T = TypeVar("T")
PROPERTY_SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

names = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=40,
)
descriptions = st.none() | st.text(
    alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=200
)
updates = st.fixed_dictionaries(
    {},
    optional={
        "backend_type": st.sampled_from(["ollama", "mlx", "openai", "auto"]),
        "endpoint_url": st.sampled_from(
            ["http://a:1", "https://b.example/v1", "http://[::1]:8080"]
        ),
        "enabled": st.booleans(),
        "max_tokens": st.integers(1, 100_000),
        "temperature_default": st.floats(0, 2),
        "timeout_seconds": st.integers(1, 3600),
        "priority": st.integers(0, 1000),
        "description": descriptions,
        "backend_model": st.none() | names,
    },
)


def run(database_url: str, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    """One example on a fresh engine over an emptied table."""

    async def scenario() -> T:
        engine = create_engine(database_url)
        sessions = session_factory(engine)
        try:
            async with sessions() as session:
                await session.execute(text("DELETE FROM llm_backends"))
                await session.commit()
            return await work(sessions)
        finally:
            await engine.dispose()

    return asyncio.run(scenario())


def snapshot(row: Any) -> dict[str, Any]:
    return BackendOut.model_validate(row).model_dump()


@PROPERTY_SETTINGS
@given(model_names=st.lists(names, min_size=1, max_size=8))
def test_model_names_stay_unique(database_url: str, model_names: list[str]) -> None:
    async def work(sessions: async_sessionmaker[AsyncSession]) -> list[str]:
        for name in model_names:
            async with sessions() as session:
                try:
                    await store.create_backend(
                        session,
                        BackendCreate(
                            model_name=name, backend_type="ollama", endpoint_url="http://x:1"
                        ).model_dump(),
                    )
                except store.DuplicateModel:
                    pass
        async with sessions() as session:
            return [row.model_name for row in await store.list_backends(session)]

    stored = run(database_url, work)
    assert sorted(stored) == sorted(set(model_names))


@PROPERTY_SETTINGS
@given(change=updates, description=descriptions)
def test_partial_update_touches_only_given_fields(
    database_url: str, change: dict[str, Any], description: str | None
) -> None:
    body = BackendUpdate.model_validate(change)

    async def work(sessions: async_sessionmaker[AsyncSession]) -> tuple[dict, dict]:
        async with sessions() as session:
            row = await store.create_backend(
                session,
                BackendCreate(
                    model_name="m", backend_type="ollama", endpoint_url="http://x:1",
                    description=description,
                ).model_dump(),
            )  # fmt: skip
            before = snapshot(row)
        async with sessions() as session:
            after = await store.update_backend(session, row.id, body.changes())
            return before, snapshot(after)

    before, after = run(database_url, work)
    for field, value in before.items():
        if field == "updated_at":
            assert after[field] >= value
        elif field in change:
            expected = change[field]
            assert after[field] == (expected.rstrip("/") if field == "endpoint_url" else expected)
        else:
            assert after[field] == value, field


@PROPERTY_SETTINGS
@given(enabled=st.booleans(), times=st.integers(0, 6))
def test_toggle_twice_is_identity(database_url: str, enabled: bool, times: int) -> None:
    async def work(sessions: async_sessionmaker[AsyncSession]) -> tuple[bool, bool]:
        async with sessions() as session:
            row = await store.create_backend(
                session,
                {"model_name": "m", "backend_type": "ollama", "endpoint_url": "http://x:1",
                 "enabled": enabled},
            )  # fmt: skip
        for _ in range(2 * times):
            async with sessions() as session:
                await store.toggle_backend(session, row.id)
        async with sessions() as session:
            once = await store.toggle_backend(session, row.id)
            assert once is not None
            once_enabled = once.enabled
            final = await store.toggle_backend(session, row.id)  # same session: fresh values
            assert final is not None
            return once_enabled, final.enabled

    once, final = run(database_url, work)
    assert once is (not enabled)
    assert final is enabled
