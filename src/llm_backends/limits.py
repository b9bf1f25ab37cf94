"""A pure ASGI middleware that answers 413 to bodies over the limit, declared or streamed."""

from __future__ import annotations

from collections.abc import Awaitable

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

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        """Not `async`: the app's own coroutine is returned, so this layer is not another
        await level that every resume of a request passes through."""
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    return _reply_413(send, scope["path"], self.max_bytes)
                return self.app(scope, receive, send)
        return self.app(scope, _limited(receive, self.max_bytes), send)


def _limited(receive: Receive, max_bytes: int) -> Receive:
    """`receive` that raises 413 once the body read so far is over `max_bytes`."""
    seen = 0

    async def limited_receive() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > max_bytes:
                raise HTTPException(413, TOO_LARGE)
        return message

    return limited_receive


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
