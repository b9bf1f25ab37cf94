"""Token management over HTTP (for the web page and the CLI) and `whoami`.

Listing, creating and revoking need `tokens:manage`. A token can only hand out scopes it has
itself (after implications), so `tokens:manage` alone cannot mint a write token.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict, Field

from llm_backends.admin.auth import Principal, Scope, actor_of, authenticated, require
from llm_backends.admin.routes import Session
from llm_backends.admin.schemas import ErrorBody, UtcTimestamp
from llm_backends.store import tokens as store
from llm_backends.store.models import ApiToken

router = APIRouter(tags=["tokens"])

_ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorBody}, 403: {"model": ErrorBody}}
TokenId = Annotated[int, Path(ge=1, le=2_147_483_647)]
Manager = Annotated[Principal, Depends(require(Scope.TOKENS))]


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f\x7f]+$")
    scopes: list[Scope] = Field(min_length=1, max_length=16)


class TokenOut(BaseModel):
    id: int
    name: str
    scopes: list[str]
    created_at: UtcTimestamp
    revoked_at: UtcTimestamp | None
    active: bool

    @classmethod
    def of(cls, row: ApiToken) -> TokenOut:
        return cls(
            id=row.id,
            name=row.name,
            scopes=row.scopes.split(),
            created_at=row.created_at,
            revoked_at=row.revoked_at,
            active=row.revoked_at is None,
        )


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself: shown this once, only its hash is kept.")


class RevokeResult(BaseModel):
    message: str
    id: int


class WhoAmI(BaseModel):
    name: str
    token_id: int | None
    scopes: list[str]


def grantable(principal: Principal, wanted: list[Scope]) -> list[str]:
    """The scopes asked for that the caller does not have itself (sorted)."""
    return sorted(str(scope) for scope in set(wanted) - principal.scopes)


@router.get("/api/tokens", response_model=list[TokenOut], responses=_ERRORS)
async def list_tokens(session: Session, _caller: Manager) -> list[TokenOut]:
    return [TokenOut.of(row) for row in await store.list_tokens(session)]


@router.post(
    "/api/tokens",
    response_model=TokenCreated,
    status_code=status.HTTP_201_CREATED,
    responses=_ERRORS,
)
async def create_token(body: TokenCreate, session: Session, caller: Manager) -> TokenCreated:
    if missing := grantable(caller, body.scopes):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"Cannot grant scopes this token does not have: {', '.join(missing)}",
        )
    row, plain = await store.create_token(
        session, body.name, [scope.value for scope in body.scopes], actor=actor_of(caller)
    )
    return TokenCreated(**TokenOut.of(row).model_dump(), token=plain)


@router.delete(
    "/api/tokens/{token_id}",
    response_model=RevokeResult,
    responses={**_ERRORS, 404: {"model": ErrorBody}},
)
async def revoke_token(token_id: TokenId, session: Session, caller: Manager) -> RevokeResult:
    row = await store.revoke_token(session, token_id, actor=actor_of(caller))
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"No active token with id: {token_id}")
    return RevokeResult(message="Token revoked", id=row.id)


@router.get("/api/auth/whoami", response_model=WhoAmI, responses={401: {"model": ErrorBody}})
async def whoami(caller: Annotated[Principal, Depends(authenticated)]) -> WhoAmI:
    return WhoAmI(name=caller.name, token_id=caller.token_id, scopes=sorted(caller.scopes))
