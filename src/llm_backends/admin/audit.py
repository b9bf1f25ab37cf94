"""The audit log over HTTP: `GET /api/audit` (filtered, paginated) and a config's history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel

from llm_backends.admin.auth import Principal, Scope, require
from llm_backends.admin.routes import BackendId, Session
from llm_backends.admin.schemas import ErrorBody, UtcTimestamp
from llm_backends.store import audit as store
from llm_backends.store import backends as backends_store
from llm_backends.store.models import AuditEntry

router = APIRouter(tags=["audit"])

_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody}, 403: {"model": ErrorBody}}


def _utc(value: datetime | None) -> datetime | None:
    """A time without a zone is UTC (as every time this API returns is)."""
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


class ActorOut(BaseModel):
    token_id: int | None
    name: str


class TargetOut(BaseModel):
    type: str
    id: int | None
    model_name: str | None = None
    name: str | None = None


class AuditEntryOut(BaseModel):
    id: int
    at: UtcTimestamp
    actor: ActorOut
    action: str
    target: TargetOut
    changes: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls(
            id=entry.id,
            at=entry.at,
            actor=ActorOut(token_id=entry.actor_token_id, name=entry.actor_name),
            action=entry.action,
            target=TargetOut(
                type=entry.target_type,
                id=entry.target_id,
                model_name=entry.target_model_name,
                name=entry.target_name,
            ),
            changes=entry.changes,
        )


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    total: int
    limit: int
    offset: int


Reader = Annotated[Principal, Depends(require(Scope.READ))]


@router.get("/api/audit", response_model=AuditPage, responses=_ERRORS)
async def list_audit(
    session: Session,
    _caller: Reader,
    model: Annotated[str | None, Query(max_length=255, description="A model_name.")] = None,
    actor: Annotated[str | None, Query(max_length=255, description="A token's name.")] = None,
    since: Annotated[datetime | None, Query(description="From this time (inclusive).")] = None,
    until: Annotated[datetime | None, Query(description="Before this time.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=2_147_483_647)] = 0,
) -> AuditPage:
    where = store.AuditFilter(model=model, actor=actor, since=_utc(since), until=_utc(until))
    entries, total = await store.list_entries(session, where, limit=limit, offset=offset)
    return AuditPage(
        items=[AuditEntryOut.of(entry) for entry in entries],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/api/llm-backends/{backend_id}/history",
    response_model=list[AuditEntryOut],
    responses={**_ERRORS, 404: {"model": ErrorBody}},
    tags=["llm-backends"],
)
async def backend_history(
    backend_id: BackendId, session: Session, _caller: Reader
) -> list[AuditEntryOut]:
    """Newest first; kept after the config is deleted."""
    entries = await store.backend_history(session, backend_id)
    if not entries and await backends_store.get_backend(session, backend_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Backend not found: {backend_id}")
    return [AuditEntryOut.of(entry) for entry in entries]
