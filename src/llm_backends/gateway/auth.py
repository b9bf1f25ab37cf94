"""Optional token check of the gateway (`GATEWAY_REQUIRE_AUTH`): permission `llm:generate`.

Off by default, as with Ollama. When on, a token is read from `Authorization: Bearer` (OpenAI
clients, the ollama client's `headers=`) or `api-key` / `x-api-key`. A granted token is
remembered for a few seconds so the hot path does not query the token table per request;
the price is that a revoked token keeps working for up to `ttl` seconds in this process.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.requests import Request

from llm_backends.admin.auth import (
    INVALID_TOKEN,
    MALFORMED_AUTHORIZATION,
    Authenticator,
    Scope,
    credentials,
)
from llm_backends.admin.errors import DATABASE_ERRORS
from llm_backends.gateway.errors import GatewayError

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


#: Without any credentials: what to send.
NO_CREDENTIALS = (
    "Not authenticated: send a token with permission llm:generate as "
    "'Authorization: Bearer <token>'"
)


def unauthorized(message: str = INVALID_TOKEN) -> GatewayError:
    return GatewayError(401, message, code="invalid_api_key", headers=_CHALLENGE)


def forbidden() -> GatewayError:
    return GatewayError(
        403,
        "Insufficient permissions: generate access (llm:generate) required",
        code="insufficient_permissions",
    )


class GatewayAuth:
    def __init__(
        self,
        authenticator: Authenticator,
        *,
        required: bool,
        ttl: float = 5.0,
        max_entries: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.required = required
        self._authenticator = authenticator
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        #: token -> until when it counts as granted.
        self._granted: dict[str, float] = {}

    async def check(self, request: Request) -> None:
        """Return if the request may generate; raise a GatewayError (401/403/503) if not."""
        if not self.required:
            return
        token, problem = credentials(request)
        if token is None:
            raise unauthorized(
                MALFORMED_AUTHORIZATION if problem == MALFORMED_AUTHORIZATION else NO_CREDENTIALS
            )
        now = self._clock()
        if self._granted.get(token, -1.0) > now:
            return
        try:
            principal = await self._authenticator.authenticate(token)
        except DATABASE_ERRORS as error:
            raise GatewayError(
                503,
                "Token store unavailable: the database cannot be reached, try again",
                code="database_unavailable",
                headers={"Retry-After": "5"},
            ) from error
        if principal is None:
            raise unauthorized(INVALID_TOKEN)
        if Scope.GENERATE not in principal.scopes:
            raise forbidden()
        if len(self._granted) >= self._max_entries:
            self._granted.clear()
        self._granted[token] = now + self._ttl
