"""A pure ASGI middleware that answers 413 to bodies over the limit, declared or streamed."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llm_backends.gateway.http_errors import protocol_error_body
from llm_backends.gateway.paths import protocol_of_path

TOO_LARGE = "Request body too large"
_TOO_LARGE_BODY = b'{"detail":"Request body too large"}'


class BodySizeLimit:
    """Declared sizes are refused before the app runs; a chunked body that grows past the
    limit raises a 413 HTTPException from `receive`, which the app's handlers turn into JSON."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await _reply_413(send, scope["path"], self.max_bytes)
                    return
                await self.app(scope, receive, send)
                return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, TOO_LARGE)
            return message

        await self.app(scope, limited_receive, send)


async def _reply_413(send: Send, path: str, max_bytes: int) -> None:
    """`{"detail": ...}`, or the protocol's error shape on a gateway path."""
    body = _TOO_LARGE_BODY
    protocol = protocol_of_path(path)
    if protocol is not None:
        message = f"{TOO_LARGE}: the limit is {max_bytes} bytes (MAX_BODY_BYTES)"
        body = protocol_error_body(protocol, 413, message)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
