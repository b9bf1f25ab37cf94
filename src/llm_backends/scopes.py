"""The permission scopes a token can carry, and what each implies.

Kept apart from `admin.auth` (FastAPI) so that the CLI, which names scopes in its options,
starts without importing the web stack.
"""

from __future__ import annotations

from enum import StrEnum


class Scope(StrEnum):
    READ = "llm_backends:read"
    WRITE = "llm_backends:write"
    METRICS = "llm_backends:metrics"
    GENERATE = "llm:generate"
    #: Create, list and revoke tokens over HTTP.
    TOKENS = "tokens:manage"
    #: Receive backends' api_key from the model lookup (a library router needs it).
    SECRETS = "llm_backends:secrets"


#: A scope also grants these.
IMPLIED: dict[str, frozenset[str]] = {
    Scope.WRITE: frozenset({Scope.READ, Scope.METRICS}),
}
