"""Queries over `llm_backends`. Every write is one transaction: a single statement for the
change itself, its audit entry and its `record_change` (the config version), so it is atomic
on both databases; uniqueness is enforced by the database, never by check-then-insert.
`fold_stats` is not a config change: it bumps nothing and audits nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, delete, func, insert, not_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningUpdate

from llm_backends.store import audit
from llm_backends.store.audit import SYSTEM, Actor
from llm_backends.store.changes import record_change
from llm_backends.store.models import AuditEntry, LLMBackend, utcnow


class DuplicateModel(Exception):
    """Another config already uses this model name (`existing_id`, when it could be read)."""

    def __init__(self, model_name: str, existing_id: int | None = None) -> None:
        self.model_name = model_name
        self.existing_id = existing_id
        message = f"Backend configuration already exists for model: {model_name}"
        if existing_id is not None:
            message += f" (id {existing_id}); to change it, PUT /api/llm-backends/{existing_id}"
        super().__init__(message)


async def _duplicate(session: AsyncSession, model_name: str) -> DuplicateModel:
    """The error of a write that hit the unique model name, naming the row that holds it."""
    await session.rollback()
    existing = await session.scalar(
        select(LLMBackend.id).where(LLMBackend.model_name == model_name)
    )
    return DuplicateModel(model_name, existing)


@dataclass(frozen=True, slots=True)
class ModelStatsBatch:
    """Aggregated router stats for one model since the last report."""

    model_name: str
    requests: int
    errors: int
    latency_ms_sum: float
    tokens_per_sec_sum: float = 0.0
    tokens_per_sec_samples: int = 0
    #: The server that answered (fleet); the table keeps per-model totals only.
    endpoint: str | None = None


async def list_backends(
    session: AsyncSession, *, enabled_only: bool = False
) -> Sequence[LLMBackend]:
    query = select(LLMBackend).order_by(LLMBackend.model_name)
    if enabled_only:
        query = query.where(LLMBackend.enabled.is_(True))
    return (await session.scalars(query)).all()


async def get_backend(session: AsyncSession, backend_id: int) -> LLMBackend | None:
    return await session.get(LLMBackend, backend_id)


async def get_backend_by_model(session: AsyncSession, model_name: str) -> LLMBackend | None:
    """The config of a model, enabled or not."""
    return await session.scalar(select(LLMBackend).where(LLMBackend.model_name == model_name))


async def get_enabled_backend(session: AsyncSession, model_name: str) -> LLMBackend | None:
    query = select(LLMBackend).where(
        LLMBackend.model_name == model_name, LLMBackend.enabled.is_(True)
    )
    return await session.scalar(query)


async def create_backend(
    session: AsyncSession, fields: Mapping[str, Any], *, actor: Actor = SYSTEM
) -> LLMBackend:
    now = utcnow()
    statement = (
        insert(LLMBackend).values(**fields, created_at=now, updated_at=now).returning(LLMBackend)
    )
    try:
        row = await session.scalar(statement)
        assert row is not None
        changes = audit.diff(None, audit.snapshot(row))
        entry = await _commit(session, actor, "backend.create", row, changes, row.model_name)
    except IntegrityError as error:
        raise await _duplicate(session, fields["model_name"]) from error
    audit.log_entry(entry)
    return row


def _update(backend_id: int, **values: Any) -> ReturningUpdate[tuple[LLMBackend]]:
    """UPDATE one row by id, returning it with the values the database now holds."""
    return (
        update(LLMBackend)
        .where(LLMBackend.id == backend_id)
        .values(**values)
        .returning(LLMBackend)
        .execution_options(synchronize_session=False, populate_existing=True)
    )


async def _commit(
    session: AsyncSession,
    actor: Actor,
    action: str,
    row: LLMBackend,
    changes: Mapping[str, Any],
    *model_names: str,
) -> AuditEntry:
    """Audit a backend write and record its models' change in the same transaction; commit.
    The caller logs the entry once the commit has succeeded."""
    entry = audit.record(session, actor, action, audit.backend_target(row), changes)
    await record_change(session, *model_names)
    await session.commit()
    return entry


async def _lock(session: AsyncSession, backend_id: int) -> dict[str, Any] | None:
    """The row's audited values, read by a no-op UPDATE: that takes the row's lock (the
    whole database's on SQLite) first, so the values are still current at commit, and
    SQLite never has to upgrade a read transaction (which fails at once when contended)."""
    row = await session.scalar(_update(backend_id, updated_at=LLMBackend.updated_at))
    return None if row is None else audit.snapshot(row)


async def update_backend(
    session: AsyncSession,
    backend_id: int,
    changes: Mapping[str, Any],
    *,
    actor: Actor = SYSTEM,
) -> LLMBackend | None:
    """Set only the given fields. None when no row has this id. Nothing to set (`PUT {}`)
    reads the row, audits nothing: `updated_at` moves only when something was written."""
    if not changes:
        return await session.get(LLMBackend, backend_id)
    before = await _lock(session, backend_id)
    if before is None:
        await session.rollback()
        return None
    statement = _update(backend_id, **changes, updated_at=utcnow())
    # A rename changes two models: the old name is freed.
    old_name = before["model_name"] if "model_name" in changes else None
    try:
        row = await session.scalar(statement)
        assert row is not None
        entry = await _commit(
            session,
            actor,
            "backend.update",
            row,
            audit.diff(before, audit.snapshot(row)),
            *filter(None, (old_name, row.model_name)),
        )
    except IntegrityError as error:
        raise await _duplicate(session, str(changes.get("model_name"))) from error
    audit.log_entry(entry)
    return row


async def delete_backend(
    session: AsyncSession, backend_id: int, *, actor: Actor = SYSTEM
) -> str | None:
    """Delete one row; its model name, or None when no row has this id."""
    statement = delete(LLMBackend).where(LLMBackend.id == backend_id).returning(LLMBackend)
    row = await session.scalar(statement)
    if row is None:
        await session.rollback()
        return None
    changes = audit.diff(audit.snapshot(row), None)
    entry = await _commit(session, actor, "backend.delete", row, changes, row.model_name)
    audit.log_entry(entry)
    return row.model_name


async def toggle_backend(
    session: AsyncSession, backend_id: int, *, actor: Actor = SYSTEM
) -> LLMBackend | None:
    """Flip `enabled` in the database itself, so concurrent toggles never lose one."""
    row = await session.scalar(
        _update(backend_id, enabled=not_(LLMBackend.enabled), updated_at=utcnow())
    )
    if row is None:
        await session.rollback()
        return None
    changes = {"enabled": {"before": not row.enabled, "after": row.enabled}}
    entry = await _commit(session, actor, "backend.toggle", row, changes, row.model_name)
    audit.log_entry(entry)
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
