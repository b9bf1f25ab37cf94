"""What a request still waiting for its answer gets at the grace deadline: a 503 in its
protocol's shape, not uvicorn's plain-text 500 and a traceback in the log.

Streams that have started answering end themselves with their protocol's error event
(gateway/streaming.py); this covers everything cut before its first byte: whole answers, a
stream still waiting for its first chunk, an Admin API call.
"""

from __future__ import annotations

import asyncio

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from llm_backends.gateway.errors import GatewayError, error_body
from llm_backends.gateway.errors import Protocol as WireProtocol
from llm_backends.shutdown import is_shutdown_cut

MESSAGE = "the server is shutting down: request ended at its grace period"
#: Ollama's own routes under /api/ (the rest of /api/ is the Admin API's).
OLLAMA_ROUTES = ("generate", "chat", "embed", "embeddings", "show", "tags", "ps", "version")


def shutdown_body(path: str) -> bytes:
    """The error body in the shape the client of `path` parses."""
    error = GatewayError(503, MESSAGE, code="server_shutdown")
    if path.startswith("/v1/"):
        return error_body(WireProtocol.OPENAI, error)
    if path.startswith("/api/") and path[5:].split("/", 1)[0] in OLLAMA_ROUTES:
        return error_body(WireProtocol.OLLAMA, error)
    return orjson.dumps({"detail": MESSAGE})


class AnswerCutRequests:
    """ASGI wrapper: a request cancelled by the grace deadline before it answered gets 503."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError as error:
            if scope["type"] != "http" or not is_shutdown_cut(error):
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            await _answer_503(scope, send)


async def _answer_503(scope: Scope, send: Send) -> None:
    body = shutdown_body(scope["path"])
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    try:
        await send({"type": "http.response.start", "status": 503, "headers": headers})
    except RuntimeError:
        return  # it had started answering after all: uvicorn closes the connection
    await send({"type": "http.response.body", "body": body})
