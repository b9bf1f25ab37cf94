"""API tokens: created once (shown once), stored as SHA-256, revocable."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from llm_backends.store import audit
from llm_backends.store.audit import Actor, Target
from llm_backends.store.models import ApiToken, utcnow

TOKEN_PREFIX = "llmb_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


#: Who made a token from the command line (no token involved: it works on the database).
CLI_ACTOR = Actor(name="cli")


async def create_token(
    session: AsyncSession, name: str, scopes: Iterable[str], *, actor: Actor = CLI_ACTOR
) -> tuple[ApiToken, str]:
    """Store a new token; returns the row and the plain token (the only time it exists).

    The audit entry has its name and scopes, never the token or its hash."""
    token = new_token()
    row = ApiToken(name=name, token_hash=hash_token(token), scopes=" ".join(sorted(set(scopes))))
    session.add(row)
    await session.flush()
    changes = {
        "name": {"before": None, "after": row.name},
        "scopes": {"before": None, "after": row.scopes.split()},
    }
    entry = audit.record(session, actor, "token.create", _target(row), changes)
    await session.commit()
    audit.log_entry(entry)
    return row, token


def _target(row: ApiToken) -> Target:
    return Target(type="token", id=row.id, name=row.name)


async def find_active_token(session: AsyncSession, token: str) -> ApiToken | None:
    query = select(ApiToken).where(
        ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None)
    )
    return await session.scalar(query)


async def list_tokens(session: AsyncSession) -> Sequence[ApiToken]:
    return (await session.scalars(select(ApiToken).order_by(ApiToken.id))).all()


async def revoke_token(
    session: AsyncSession, token_id: int, *, actor: Actor = CLI_ACTOR
) -> ApiToken | None:
    """Revoke an active token; the row, or None when no active token has this id."""
    row = await session.scalar(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .returning(ApiToken)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    if row is None:
        await session.rollback()
        return None
    assert row.revoked_at is not None
    changes = {"revoked_at": {"before": None, "after": _iso(row.revoked_at)}}
    entry = audit.record(session, actor, "token.revoke", _target(row), changes)
    await session.commit()
    audit.log_entry(entry)
    return row


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


async def count_active_tokens(session: AsyncSession) -> int:
    query = select(func.count()).select_from(ApiToken).where(ApiToken.revoked_at.is_(None))
    return int(await session.scalar(query) or 0)
