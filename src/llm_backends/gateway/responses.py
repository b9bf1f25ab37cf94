"""Answers as raw ASGI messages, with header lists built once by the caller.

Starlette's `Response` turns a header dict into a list (lowercasing and encoding every name
and value) and then checks it for content-length and content-type: on the generation path
that costs more than rendering the answer. `RawResponse` is still a `Response` (FastAPI
passes it through untouched on its own route path), but its `raw_headers` are final.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

Headers = list[tuple[bytes, bytes]]

JSON_TYPE = (b"content-type", b"application/json")


def header(name: str, value: str) -> tuple[bytes, bytes]:
    """One header as Starlette encodes it: a lowercase name, both latin-1."""
    return name.lower().encode("latin-1"), value.encode("latin-1")


def headers_of(headers: Mapping[str, str] | None) -> Iterable[tuple[bytes, bytes]]:
    if not headers:
        return ()
    return [header(name, value) for name, value in headers.items()]


class RawResponse(Response):
    """A whole JSON answer: `status`, `body`, and the headers besides length and type."""

    def __init__(self, body: bytes, status: int = 200, headers: Headers | None = None) -> None:
        self.status_code = status
        self.body = body
        self.background = None
        self.raw_headers = [(b"content-length", b"%d" % len(body)), JSON_TYPE]
        if headers:
            self.raw_headers.extend(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        await send({"type": "http.response.body", "body": self.body})
