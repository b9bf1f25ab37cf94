"""The audit log: who changed what, when, with the fields before and after.

An entry is added to the caller's session before its commit, so it is part of the write's own
transaction: a write that fails (duplicate, not found, database error) leaves no entry, and no
entry exists without its write. Secrets never enter it: an api_key change is the marker
"set" / "replaced" / null, never a value (not even the ciphertext).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from llm_backends.store.models import AuditEntry, LLMBackend, utcnow

#: The config fields an entry records (running stats and timestamps are not "changes").
CONFIG_FIELDS = (
    "model_name",
    "backend_type",
    "endpoint_url",
    "backend_model",
    "enabled",
    "max_tokens",
    "temperature_default",
    "timeout_seconds",
    "priority",
    "description",
    "api_key_header",
)
#: The secret field: only its presence is recorded.
SECRET_FIELD = "api_key"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change: a stored token (id and name) or the bootstrap token / the CLI."""

    name: str
    token_id: int | None = None


SYSTEM = Actor(name="system")


@dataclass(frozen=True, slots=True)
class Target:
    type: str
    id: int | None
    model_name: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    model: str | None = None
    actor: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def snapshot(row: LLMBackend) -> dict[str, Any]:
    """The audited fields of a config; the key as its ciphertext, which `diff` turns into a
    marker (a new ciphertext means a new key: Fernet never repeats one)."""
    values = {name: getattr(row, name) for name in CONFIG_FIELDS}
    values[SECRET_FIELD] = row.api_key_encrypted
    return values


def _secret_marker(before: object, after: object) -> dict[str, str | None]:
    if before is not None and after is not None:
        return {"before": "set", "after": "replaced"}
    return {"before": "set" if before else None, "after": "set" if after else None}


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> dict[str, Any]:
    """`{field: {"before", "after"}}` for the fields that differ (a create or delete: the
    fields that are set)."""
    old = before or {}
    new = after or {}
    changes: dict[str, Any] = {}
    for name in (*CONFIG_FIELDS, SECRET_FIELD):
        was, now = old.get(name), new.get(name)
        if was == now:
            continue
        if name == SECRET_FIELD:
            changes[name] = _secret_marker(was, now)
        else:
            changes[name] = {"before": was, "after": now}
    return changes


def record(
    session: AsyncSession,
    actor: Actor,
    action: str,
    target: Target,
    changes: Mapping[str, Any],
) -> AuditEntry:
    """Add an entry to the session's transaction (the caller commits)."""
    entry = AuditEntry(
        at=utcnow(),
        actor_token_id=actor.token_id,
        actor_name=actor.name,
        action=action,
        target_type=target.type,
        target_id=target.id,
        target_model_name=target.model_name,
        target_name=target.name,
        changes=dict(changes),
    )
    session.add(entry)
    return entry


def backend_target(row: LLMBackend) -> Target:
    return Target(type="backend", id=row.id, model_name=row.model_name)


async def list_entries(
    session: AsyncSession, where: AuditFilter, *, limit: int, offset: int
) -> tuple[Sequence[AuditEntry], int]:
    """A page of entries, newest first, and how many match in all."""
    conditions = []
    if where.model is not None:
        conditions.append(AuditEntry.target_model_name == where.model)
    if where.actor is not None:
        conditions.append(AuditEntry.actor_name == where.actor)
    if where.since is not None:
        conditions.append(AuditEntry.at >= where.since)
    if where.until is not None:
        conditions.append(AuditEntry.at < where.until)
    total = await session.scalar(select(func.count()).select_from(AuditEntry).where(*conditions))
    query = (
        select(AuditEntry)
        .where(*conditions)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return (await session.scalars(query)).all(), int(total or 0)


async def backend_history(session: AsyncSession, backend_id: int) -> Sequence[AuditEntry]:
    """Every entry of one config (also after its deletion), newest first."""
    query = (
        select(AuditEntry)
        .where(AuditEntry.target_type == "backend", AuditEntry.target_id == backend_id)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    )
    return (await session.scalars(query)).all()


async def prune(session: AsyncSession, before: datetime) -> int:
    """Delete the entries written before `before` (the retention); how many went."""
    result = await session.execute(
        delete(AuditEntry)
        .where(AuditEntry.at < before)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    return result.rowcount or 0


_EVENTS = {"token.create": "token_created", "token.revoke": "token_revoked"}


def log_entry(entry: AuditEntry) -> None:
    """One structured line per committed write: names of the changed fields, never values."""
    structlog.get_logger("llm_backends.audit").info(
        _EVENTS.get(entry.action, "config_changed"),
        action=entry.action,
        actor=entry.actor_name,
        actor_token_id=entry.actor_token_id,
        target_type=entry.target_type,
        target_id=entry.target_id,
        model_name=entry.target_model_name,
        fields=sorted(entry.changes),
    )
