"""Which protocol a path speaks, so that every error on it (a 404 for an unknown path, a 405,
a 413 from the body-size limit) comes in the shape that path's clients parse."""

from __future__ import annotations

from llm_backends.gateway.errors import Protocol

#: Admin API paths under /api/: they keep FastAPI's `{"detail": ...}` errors.
ADMIN_PREFIXES = ("/api/llm-backends", "/api/audit", "/api/tokens", "/api/auth")


def protocol_of_path(path: str) -> Protocol | None:
    """OpenAI for /v1/..., Ollama for /api/... except the Admin API's paths, else None."""
    if path == "/v1" or path.startswith("/v1/"):
        return Protocol.OPENAI
    if path == "/api" or path.startswith("/api/"):
        for prefix in ADMIN_PREFIXES:
            if path == prefix or path.startswith(prefix + "/"):
                return None
        return Protocol.OLLAMA
    return None
