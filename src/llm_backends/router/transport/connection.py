"""One keep-alive HTTP/1.1 connection to a backend: an asyncio Protocol over httptools.

Why not aiohttp here: on the request path aiohttp's client was over a third of the gateway's
CPU (bench/profile.py): a session, a request and a response object, a payload registry, a
cookie jar, header multidicts and a timer per request. A backend call needs much less: write
one buffer, parse the answer as it arrives, hand its body over in the chunks the socket gives.

A connection serves one request at a time (no pipelining). The caller writes a request with
`send`, awaits `headers`, then reads the body with `read_chunk` until it returns None. The
parser's callbacks run inside `data_received`; waiting is on at most one future at a time.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Final, cast

import httptools

from llm_backends.router.transport.errors import ProtocolError, ServerDisconnected

#: Body bytes buffered unread before the socket stops being read (a slow consumer of a fast
#: stream): the kernel's buffers and TCP flow control then hold the backend back.
HIGH_WATER: Final = 256 * 1024


class Connection(asyncio.Protocol):
    """The state of one connection; `idle_since` is set by the pool while it is parked."""

    def __init__(self, loop: asyncio.AbstractEventLoop, key: tuple[str, str, int]) -> None:
        self.loop = loop
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.idle_since = 0.0
        self.closed = False
        #: Bytes of the current answer seen (a reused connection that dies before any is
        #: stale: the request may be sent again on a fresh one).
        self.received = 0
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        #: The answer's Content-Length (None: none, or not a number), read with the headers.
        self.content_length: int | None = None
        self.complete = False
        self._body: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._headers_done = False
        self._until_close = False  # no Content-Length, not chunked: the body ends at EOF
        self._keep_alive = False  # read at the headers (the parser forgets it at the end)
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        #: Told when the socket is gone (the pool forgets the connection).
        self.on_lost: Callable[[Connection], None] | None = None

    # -- the request side ------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Write one whole request, after resetting the answer state of the previous one."""
        self.received = 0
        self.status = 0
        self.headers = []
        self.content_length = None
        self.complete = False
        self._body.clear()  # what the last consumer left unread (the whole answer had come)
        self._buffered = 0
        self._headers_done = False
        self._until_close = False
        self._keep_alive = False
        assert self.transport is not None
        self.transport.write(data)

    async def wait_headers(self, deadline: float | None) -> None:
        """Until the status line and headers of the answer are in (or the connection fails).
        `deadline` (loop time) bounds the wait: TimeoutError past it."""
        while not self._headers_done:
            if self._error is not None:
                raise self._error
            await self._wait(deadline)

    async def read_chunk(self, deadline: float | None) -> bytes | None:
        """The next piece of the body as it arrived, or None at its end."""
        while not self._body:
            if self.complete:
                return None
            if self._error is not None:
                raise self._error
            await self._wait(deadline)
        data = self._body.popleft()
        self._buffered -= len(data)
        if self._paused and self._buffered < HIGH_WATER // 2:
            self._paused = False
            if self.transport is not None and not self.closed:
                self.transport.resume_reading()
        return data

    def reusable(self) -> bool:
        """The answer was read to its end and both sides keep the connection open."""
        return self.complete and not self.closed and not self._until_close and self._keep_alive

    def close(self) -> None:
        """Drop the connection (the server sees the disconnect and can stop generating)."""
        if not self.closed and self.transport is not None:
            self.transport.close()
        self.closed = True

    def header(self, name: bytes) -> str | None:
        """A response header's value by lower-case name, the first if repeated."""
        for key, value in self.headers:
            if key.lower() == name:
                return value.decode("latin-1")
        return None

    async def _wait(self, deadline: float | None) -> None:
        """Until the next event of the connection. A timer only when a wait really happens:
        the usual read finds its data already buffered and costs none."""
        waiter = self._waiter = self.loop.create_future()
        timer = None if deadline is None else self.loop.call_at(deadline, _expire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"bad HTTP response: {exc}"))
            self.close()

    def eof_received(self) -> bool:
        return False  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.on_lost is not None:
            self.on_lost(self)
        if self._until_close and self._headers_done and not self.complete:
            self.complete = True  # a body delimited by the close: this is its end
            self._wake()
        elif not self.complete:
            self._fail(ServerDisconnected(self._headers_done, str(exc) if exc else ""))

    def pause_writing(self) -> None:  # a request body is written once; nothing to pause
        pass

    def resume_writing(self) -> None:
        pass

    def _fail(self, error: BaseException) -> None:
        if self._error is None:
            self._error = error
        self._wake()

    # -- httptools callbacks -----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self._keep_alive = self.parser.should_keep_alive()
        self._headers_done = True
        # One pass: the first Content-Length (kept when it is a number), and whether the body
        # is framed at all (by a Content-Length or a Transfer-Encoding).
        length: bytes | None = None
        framed = False
        for name, value in self.headers:
            lower = name.lower()
            if lower == b"content-length":
                framed = True
                if length is None:
                    length = value
            elif lower == b"transfer-encoding":
                framed = True
        if length is not None and length.isdigit():
            self.content_length = int(length)
        if not framed:
            self._until_close = self.status >= 200 and self.status not in (204, 304)
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._wake()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())
