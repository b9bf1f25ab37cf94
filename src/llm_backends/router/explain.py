"""Router error messages that carry their cause: what opened a breaker and when it is
tried again, and that a model without an enabled config went to the default Ollama (a
mistyped or disabled model otherwise reads as "cannot reach backend localhost:11434")."""

from __future__ import annotations

import time

from llm_backends.router.errors import LLMRouterError


def circuit_open_reason(failures: int, last_failure: str | None, retry_in: float) -> str:
    """'circuit open after 3 consecutive failures (the last: ...); next probe in 29.5s
    (at 20:15:03 UTC)'."""
    at = time.strftime("%H:%M:%S", time.gmtime(time.time() + retry_in))
    cause = f" (the last: {last_failure})" if last_failure else ""
    return (
        f"circuit open after {failures} consecutive failures{cause}; "
        f"next probe in {retry_in:.1f}s (at {at} UTC)"
    )


def default_route_note(model: str, endpoint: str) -> str:
    return (
        f"model '{model}' has no enabled config (none, or disabled), so it was sent to the "
        f"default Ollama at {endpoint} (OLLAMA_URL)"
    )


def on_default_route(error: LLMRouterError, model: str, endpoint: str) -> LLMRouterError:
    """The same error, of the same type, saying that the default route was taken."""
    explained = type(error)(
        f"{error.reason}; {default_route_note(model, endpoint)}",
        model=error.model,
        backend=error.backend,
        endpoint=error.endpoint,
        status_code=error.status_code,
        retry_after=error.retry_after,
    )
    explained.fallback_from = error.fallback_from
    explained.default_route = True
    return explained
