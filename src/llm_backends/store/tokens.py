"""API tokens: created once (shown once), stored as SHA-256, revocable."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from llm_backends.store.models import ApiToken, utcnow

TOKEN_PREFIX = "llmb_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def create_token(
    session: AsyncSession, name: str, scopes: Iterable[str]
) -> tuple[ApiToken, str]:
    """Store a new token; returns the row and the plain token (the only time it exists)."""
    token = new_token()
    row = ApiToken(name=name, token_hash=hash_token(token), scopes=" ".join(sorted(set(scopes))))
    session.add(row)
    await session.commit()
    return row, token


async def find_active_token(session: AsyncSession, token: str) -> ApiToken | None:
    query = select(ApiToken).where(
        ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None)
    )
    return await session.scalar(query)


async def list_tokens(session: AsyncSession) -> Sequence[ApiToken]:
    return (await session.scalars(select(ApiToken).order_by(ApiToken.id))).all()


async def revoke_token(session: AsyncSession, token_id: int) -> bool:
    result = await session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    await session.commit()
    return bool(result.rowcount)


async def count_active_tokens(session: AsyncSession) -> int:
    query = select(func.count()).select_from(ApiToken).where(ApiToken.revoked_at.is_(None))
    return int(await session.scalar(query) or 0)
