"""Bearer-token auth with scopes. Tokens are compared in constant time and never logged."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm_backends.scopes import IMPLIED, Scope
from llm_backends.store import tokens
from llm_backends.store.audit import Actor

#: What a 403 says is missing.
_SCOPE_WORD = {
    Scope.READ: "read",
    Scope.WRITE: "write",
    Scope.METRICS: "metrics",
    Scope.GENERATE: "generate",
    Scope.TOKENS: "token management",
    Scope.SECRETS: "secrets",
}

#: Declares the bearer scheme in the OpenAPI schema (so /docs has "Authorize"); the token
#: itself is read by `bearer_token`, which also takes the `api-key` headers.
_bearer_scheme = HTTPBearer(auto_error=False, description="An Admin API token: `llmb_...`.")


def expand_scopes(scopes: set[str] | frozenset[str]) -> frozenset[str]:
    expanded = set(scopes)
    for scope in scopes:
        expanded |= IMPLIED.get(scope, frozenset())
    return frozenset(expanded)


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    scopes: frozenset[str]
    #: The stored token's id; None for the bootstrap token (ADMIN_API_TOKEN).
    token_id: int | None = None


def actor_of(principal: Principal) -> Actor:
    """The audit log's name for the caller of a write."""
    return Actor(name=principal.name, token_id=principal.token_id)


#: The three 401s, each saying what to do. None says anything about other tokens.
NO_CREDENTIALS = "Not authenticated: send a token as 'Authorization: Bearer <token>'"
MALFORMED_AUTHORIZATION = "Malformed Authorization header: expected 'Authorization: Bearer <token>'"
INVALID_TOKEN = "Invalid token: it is unknown or has been revoked"


def unauthorized(detail: str = INVALID_TOKEN) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


def credentials(request: Request) -> tuple[str | None, str]:
    """The token presented as `Authorization: Bearer <t>` (or in the OpenAI-style `api-key`
    / `x-api-key` header); without one, None and which 401 message says why."""
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token or " " in token:
            return None, MALFORMED_AUTHORIZATION
        return token, ""
    token = request.headers.get("api-key") or request.headers.get("x-api-key")
    return (token, "") if token else (None, NO_CREDENTIALS)


def bearer_token(request: Request) -> str | None:
    """The presented token, if any (see `credentials`)."""
    return credentials(request)[0]


class Authenticator:
    """Turns a presented token into a Principal: the bootstrap token first, then stored tokens."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], bootstrap_token: SecretStr | None
    ) -> None:
        self._sessions = sessions
        self._bootstrap = (
            bootstrap_token.get_secret_value().encode()
            if bootstrap_token and bootstrap_token.get_secret_value()
            else None
        )

    async def authenticate(self, token: str | None) -> Principal | None:
        if not token or len(token) > 512:
            return None
        if self._bootstrap is not None and hmac.compare_digest(token.encode(), self._bootstrap):
            return Principal(name="bootstrap", scopes=frozenset(Scope))
        async with self._sessions() as session:
            row = await tokens.find_active_token(session, token)
        if row is None:
            return None
        return Principal(
            name=row.name, scopes=expand_scopes(set(row.scopes.split())), token_id=row.id
        )


_Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer_scheme)]


async def authenticated(request: Request, _credentials: _Credentials = None) -> Principal:
    """A FastAPI dependency: the caller of any valid token, 401 (saying which problem)
    otherwise."""
    authenticator: Authenticator = request.app.state.authenticator
    token, problem = credentials(request)
    if token is None:
        raise unauthorized(problem)
    principal = await authenticator.authenticate(token)
    if principal is None:
        raise unauthorized(INVALID_TOKEN)
    return principal


async def optional_principal(request: Request) -> Principal | None:
    """The caller when it presented a valid token, else None (for public routes)."""
    token = bearer_token(request)
    if token is None:
        return None
    authenticator: Authenticator = request.app.state.authenticator
    return await authenticator.authenticate(token)


def require(scope: Scope) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency: 401 without a valid token, 403 without `scope`."""

    async def dependency(request: Request, _credentials: _Credentials = None) -> Principal:
        principal = await authenticated(request)
        if scope not in principal.scopes:
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail=f"Insufficient permissions: {_SCOPE_WORD[scope]} access required",
            )
        return principal

    dependency.__name__ = f"require_{_SCOPE_WORD[scope]}"
    return dependency
