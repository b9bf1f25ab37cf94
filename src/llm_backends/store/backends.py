"""Queries over `llm_backends`. Every write is a single statement plus its `record_change`
(the config version, in the same transaction), so it is atomic on both databases and
uniqueness is enforced by the database, never by check-then-insert. `fold_stats` is not a
config change: it bumps nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, delete, func, insert, not_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from llm_backends.store.changes import record_change
from llm_backends.store.models import LLMBackend, utcnow


class DuplicateModel(Exception):
    """Another config already uses this model name."""

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        super().__init__(f"Backend configuration already exists for model: {model_name}")


@dataclass(frozen=True, slots=True)
class ModelStatsBatch:
    """Aggregated router stats for one model since the last report."""

    model_name: str
    requests: int
    errors: int
    latency_ms_sum: float
    tokens_per_sec_sum: float = 0.0
    tokens_per_sec_samples: int = 0


async def list_backends(
    session: AsyncSession, *, enabled_only: bool = False
) -> Sequence[LLMBackend]:
    query = select(LLMBackend).order_by(LLMBackend.model_name)
    if enabled_only:
        query = query.where(LLMBackend.enabled.is_(True))
    return (await session.scalars(query)).all()


async def get_backend(session: AsyncSession, backend_id: int) -> LLMBackend | None:
    return await session.get(LLMBackend, backend_id)


async def get_enabled_backend(session: AsyncSession, model_name: str) -> LLMBackend | None:
    query = select(LLMBackend).where(
        LLMBackend.model_name == model_name, LLMBackend.enabled.is_(True)
    )
    return await session.scalar(query)


async def create_backend(session: AsyncSession, fields: Mapping[str, Any]) -> LLMBackend:
    now = utcnow()
    statement = (
        insert(LLMBackend).values(**fields, created_at=now, updated_at=now).returning(LLMBackend)
    )
    try:
        row = await session.scalar(statement)
        assert row is not None
        await record_change(session, row.model_name)
        await session.commit()
    except IntegrityError as error:
        await session.rollback()
        raise DuplicateModel(fields["model_name"]) from error
    return row


async def update_backend(
    session: AsyncSession, backend_id: int, changes: Mapping[str, Any]
) -> LLMBackend | None:
    """Set only the given fields. None when no row has this id."""
    statement = (
        update(LLMBackend)
        .where(LLMBackend.id == backend_id)
        .values(**changes, updated_at=utcnow())
        .returning(LLMBackend)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    old_name = None
    if "model_name" in changes:  # a rename changes two models: the old name is freed
        old_name = await session.scalar(
            select(LLMBackend.model_name).where(LLMBackend.id == backend_id)
        )
    try:
        row = await session.scalar(statement)
        if row is not None:
            await record_change(session, *filter(None, (old_name, row.model_name)))
        await session.commit()
    except IntegrityError as error:
        await session.rollback()
        raise DuplicateModel(str(changes.get("model_name"))) from error
    return row


async def delete_backend(session: AsyncSession, backend_id: int) -> str | None:
    """Delete one row; its model name, or None when no row has this id."""
    statement = (
        delete(LLMBackend).where(LLMBackend.id == backend_id).returning(LLMBackend.model_name)
    )
    model_name = await session.scalar(statement)
    if model_name is not None:
        await record_change(session, model_name)
    await session.commit()
    return model_name


async def toggle_backend(session: AsyncSession, backend_id: int) -> LLMBackend | None:
    """Flip `enabled` in the database itself, so concurrent toggles never lose one."""
    statement = (
        update(LLMBackend)
        .where(LLMBackend.id == backend_id)
        .values(enabled=not_(LLMBackend.enabled), updated_at=utcnow())
        .returning(LLMBackend)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    row = await session.scalar(statement)
    if row is not None:
        await record_change(session, row.model_name)
    await session.commit()
    return row


async def fold_stats(session: AsyncSession, batches: Sequence[ModelStatsBatch]) -> int:
    """Fold router stats into the running totals and averages; returns rows updated.

    Averages are weighted by request counts (latency) and successful samples (tokens/s), computed
    in SQL from the old values so that concurrent reports from many replicas add up correctly.
    """
    updated = 0
    for batch in batches:
        if batch.requests <= 0:
            continue
        old_n = LLMBackend.total_requests
        new_n = old_n + batch.requests
        values: dict[str, Any] = {
            "total_requests": new_n,
            "total_errors": LLMBackend.total_errors + batch.errors,
            "avg_latency_ms": (
                func.coalesce(LLMBackend.avg_latency_ms, 0.0) * old_n + batch.latency_ms_sum
            )
            / new_n,
        }
        if batch.tokens_per_sec_samples > 0:
            old_ok = old_n - LLMBackend.total_errors
            values["avg_tokens_per_sec"] = case(
                (
                    LLMBackend.avg_tokens_per_sec.is_(None),
                    batch.tokens_per_sec_sum / batch.tokens_per_sec_samples,
                ),
                else_=(LLMBackend.avg_tokens_per_sec * old_ok + batch.tokens_per_sec_sum)
                / (old_ok + batch.tokens_per_sec_samples),
            )
        result = await session.execute(
            update(LLMBackend)
            .where(LLMBackend.model_name == batch.model_name)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        updated += result.rowcount or 0
    await session.commit()
    return updated
