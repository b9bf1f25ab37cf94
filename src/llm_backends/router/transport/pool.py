"""Keep-alive connections per (scheme, host, port), and the one call the backends make.

`HttpPool.request` writes a request and returns once the answer's status and headers are in;
the `Response` then hands out the body and gives the connection back (`release`): to the pool
when the answer was read to its end, closed otherwise — a consumer that stops early (a client
that went away) closes it, and the server sees the disconnect.

Limits are aiohttp's TCPConnector's, which this replaces on the request path: at most
`max_connections` open at once (a request beyond waits for one), idle ones kept
`keepalive_seconds`. A request on a reused connection that the server had closed meanwhile
(nothing of an answer arrived) is sent once more on a new connection, as browsers and Go's
client do; nothing else is retried here (the router owns retries).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections import deque
from typing import NamedTuple
from urllib.parse import urlsplit

from llm_backends.router.transport.connection import Connection
from llm_backends.router.transport.errors import ConnectError, InvalidURL, ServerDisconnected

Headers = tuple[tuple[str, str], ...]


class Target(NamedTuple):
    """Where a URL points, and the constant start of a request to it."""

    key: tuple[str, str, int]
    host: str
    port: int
    tls: bool
    path: bytes
    host_header: bytes


@functools.lru_cache(maxsize=512)
def parse_url(url: str) -> Target:
    """`http(s)://host[:port]/path?query`, parsed once per URL (configs repeat a few)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"invalid URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidURL(f"invalid URL {url!r}: not an http(s) URL with a host")
    tls = parts.scheme == "https"
    host = parts.hostname
    port = port or (443 if tls else 80)
    shown = f"[{host}]" if ":" in host else host
    if port != (443 if tls else 80):
        shown = f"{shown}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target((parts.scheme, host, port), host, port, tls, path.encode(), shown.encode())


@functools.lru_cache(maxsize=256)
def _header_lines(headers: Headers) -> bytes:
    """The caller's headers as request lines (the backends pass a few constant tuples)."""
    return "".join(f"{name}: {value}\r\n" for name, value in headers).encode("latin-1")


def request_head(method: bytes, target: Target, headers: Headers, length: int) -> bytes:
    return b"%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n%s\r\n" % (
        method,
        target.path,
        target.host_header,
        length,
        _header_lines(headers),
    )


class Response:
    """An answer whose status and headers are in; the body is read from it, then `release`."""

    __slots__ = ("_conn", "_deadline", "_pool", "_read_timeout", "content_length", "status")

    def __init__(
        self,
        conn: Connection,
        pool: HttpPool,
        deadline: float | None,
        read_timeout: float | None,
    ) -> None:
        self.status = conn.status
        #: The answer's Content-Length, None when it has none.
        self.content_length = conn.content_length
        self._conn = conn
        self._pool = pool
        self._deadline = deadline
        self._read_timeout = read_timeout

    def header(self, name: bytes) -> str | None:
        """A header's value by lower-case name."""
        return self._conn.header(name)

    def _until(self) -> float | None:
        if self._deadline is not None:
            return self._deadline
        if self._read_timeout is not None:
            return self._conn.loop.time() + self._read_timeout
        return None

    async def read_chunk(self) -> bytes | None:
        """The next piece of the body, None at its end; each wait is bounded (TimeoutError)."""
        return await self._conn.read_chunk(self._until())

    async def read(self, cap: int) -> tuple[bytes, bool]:
        """At most `cap` bytes of the body, and whether there was more (left unread)."""
        first = await self.read_chunk()
        if first is None:
            return b"", False
        second = await self.read_chunk() if len(first) <= cap else None
        if second is None:  # the usual answer: one piece, returned without a copy
            return (first, False) if len(first) <= cap else (first[:cap], True)
        body = bytearray(first)
        data: bytes | None = second
        while data is not None:
            body += data
            if len(body) > cap:
                return bytes(body[:cap]), True
            data = await self.read_chunk()
        return bytes(body), False

    def release(self) -> None:
        """Give the connection back: parked when the answer was read whole, else closed."""
        self._pool.give_back(self._conn)


class HttpPool:
    """Keep-alive HTTP/1.1 connections, belonging to the event loop that made the pool."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        max_connections: int = 100,
        keepalive_seconds: float = 60.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`tls`: the context of https connections (default: the system's CAs)."""
        self.loop = loop
        self.max_connections = max_connections
        self.keepalive_seconds = keepalive_seconds
        self._idle: dict[tuple[str, str, int], list[Connection]] = {}
        self._open: set[Connection] = set()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._tls = tls
        self.closed = False

    async def request(
        self,
        method: bytes,
        url: str,
        body: bytes,
        headers: Headers,
        *,
        connect_timeout: float,
        total: float | None = None,
        read_timeout: float | None = None,
    ) -> Response:
        """Send a request; the answer once its headers are in.

        `total` (seconds) bounds the whole exchange, connecting and reading the body included;
        `read_timeout` instead bounds each wait for the server (a stream that may run for
        ever); `connect_timeout` bounds connecting in both cases.
        """
        target = parse_url(url)
        data = request_head(method, target, headers, len(body)) + body
        deadline = None if total is None else self.loop.time() + total
        for attempt in (1, 2):
            conn, reused = await self._acquire(target, connect_timeout, deadline)
            try:
                conn.send(data)
                until = deadline
                if until is None and read_timeout is not None:
                    until = self.loop.time() + read_timeout
                await conn.wait_headers(until)
            except ServerDisconnected:
                self._drop(conn)
                if reused and conn.received == 0 and attempt == 1:
                    continue  # a stale keep-alive connection: once more on a fresh one
                raise
            except BaseException:
                self._drop(conn)
                raise
            return Response(conn, self, deadline, read_timeout)
        raise AssertionError("unreachable")

    @property
    def in_use(self) -> int:
        """Connections handed out and not given back (0 when every answer was released)."""
        return len(self._open) - sum(len(idle) for idle in self._idle.values())

    def give_back(self, conn: Connection) -> None:
        if self.closed or not conn.reusable():
            self._drop(conn)
            return
        conn.idle_since = self.loop.time()
        self._idle.setdefault(conn.key, []).append(conn)
        self._wake_one()

    async def close(self) -> None:
        """Close every connection; requests still waiting for one fail."""
        self.closed = True
        for conn in list(self._open):
            self._drop(conn)
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ConnectionError("HTTP pool closed"))

    # -- internals -------------------------------------------------------------------------

    async def _acquire(
        self, target: Target, connect_timeout: float, deadline: float | None
    ) -> tuple[Connection, bool]:
        while True:
            idle = self._idle.get(target.key)
            now = self.loop.time()
            while idle:
                conn = idle.pop()
                if not conn.closed and now - conn.idle_since < self.keepalive_seconds:
                    return conn, True
                self._drop(conn)
            if len(self._open) < self.max_connections or self._evict_idle():
                return await self._connect(target, connect_timeout, deadline), False
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            finally:
                if not waiter.done():
                    waiter.cancel()
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    async def _connect(
        self, target: Target, connect_timeout: float, deadline: float | None
    ) -> Connection:
        if self.closed:
            raise ConnectionError("HTTP pool closed")
        limit = connect_timeout
        if deadline is not None:
            limit = max(0.0, min(limit, deadline - self.loop.time()))
        conn = Connection(self.loop, target.key)
        self._open.add(conn)  # counts against the limit while connecting
        try:
            async with asyncio.timeout(limit):
                await self.loop.create_connection(
                    lambda: conn,
                    target.host,
                    target.port,
                    ssl=self._tls_context() if target.tls else None,
                    server_hostname=target.host if target.tls else None,
                )
        except OSError as exc:
            self._forget(conn)
            raise ConnectError(target.host, target.port, exc) from exc
        except BaseException:
            self._forget(conn)
            raise
        conn.on_lost = self._forget
        return conn

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            self._tls = ssl.create_default_context()
        return self._tls

    def _evict_idle(self) -> bool:
        """Close the longest-idle connection to any server, to make room; False if none."""
        oldest: Connection | None = None
        for conns in self._idle.values():
            if conns and (oldest is None or conns[0].idle_since < oldest.idle_since):
                oldest = conns[0]
        if oldest is None:
            return False
        self._drop(oldest)
        return True

    def _drop(self, conn: Connection) -> None:
        conn.close()
        self._forget(conn)

    def _forget(self, conn: Connection) -> None:
        if conn in self._open:
            self._open.discard(conn)
            idle = self._idle.get(conn.key)
            if idle and conn in idle:
                idle.remove(conn)
            self._wake_one()

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
