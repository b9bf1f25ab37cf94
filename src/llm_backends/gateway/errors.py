"""Gateway errors, rendered in each protocol's own shape, with secrets scrubbed from messages.

OpenAI clients parse `{"error": {"message", "type", "param", "code"}}`; Ollama clients parse
`{"error": "..."}`. Both shapes come from one `GatewayError`, so the flow code never branches
on the protocol to report a failure.
"""

from __future__ import annotations

import re
from enum import StrEnum

import orjson

from llm_backends.router.errors import LLMRouterError


class Protocol(StrEnum):
    OPENAI = "openai"
    OLLAMA = "ollama"


#: OpenAI's `type` per status class (it has no 5xx-specific types beyond these two).
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
}

#: Set ("true") on answers of a model without an enabled config, sent to the default Ollama.
DEFAULT_ROUTE_HEADER = "x-llm-default-route"

_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_BEARER = re.compile(r"(bearer\s+)\S+", re.IGNORECASE)
_SECRET_PARAM = re.compile(
    r"((?:api[-_]?key|access[-_]?token|token|secret|password)=)[^&\s'\"]+", re.IGNORECASE
)
_TOKEN_VALUE = re.compile(r"llmb_[A-Za-z0-9_-]{8,}")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def redact(message: str) -> str:
    """Messages name endpoints and echo backend bodies: drop credentials that may be in them."""
    message = _USERINFO.sub("[redacted]@", message)
    message = _BEARER.sub(r"\1[redacted]", message)
    message = _SECRET_PARAM.sub(r"\1[redacted]", message)
    return _TOKEN_VALUE.sub("[redacted]", message)


class GatewayError(Exception):
    """A failed gateway request: HTTP status, a client-safe message, and OpenAI's extras."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        backend: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        #: The backend that failed, when one did (for the x-llm-backend header and metrics).
        self.backend = backend
        self.headers = headers

    @property
    def openai_type(self) -> str:
        return _OPENAI_TYPES.get(self.status, "api_error")


def from_router_error(error: LLMRouterError) -> GatewayError:
    """502 unavailable/invalid, 504 timeout, 404 unknown model, 400 rejected request; a
    backend's Retry-After (it answered 503 or 429) is passed on, and a request that took the
    default route (no enabled config) says so in DEFAULT_ROUTE_HEADER."""
    headers: dict[str, str] | None = None
    if error.retry_after or error.default_route:
        headers = {}
        if error.retry_after:
            headers["Retry-After"] = error.retry_after
        if error.default_route:
            headers[DEFAULT_ROUTE_HEADER] = "true"
    return GatewayError(
        error.http_status,
        redact(str(error)),
        code=error_code(error),
        param=getattr(error, "param", None),
        backend=error.backend,
        headers=headers,
    )


def error_code(error: BaseException) -> str:
    """`BackendTimeout` -> "backend_timeout": a stable code clients and metrics can match."""
    return _CAMEL.sub("_", type(error).__name__).lower()


def bad_request(message: str, param: str | None = None) -> GatewayError:
    return GatewayError(400, message, param=param)


def error_object(protocol: Protocol, error: GatewayError) -> dict[str, object]:
    if protocol is Protocol.OLLAMA:
        return {"error": error.message}
    return {
        "error": {
            "message": error.message,
            "type": error.openai_type,
            "param": error.param,
            "code": error.code,
        }
    }


def error_body(protocol: Protocol, error: GatewayError) -> bytes:
    return orjson.dumps(error_object(protocol, error))
