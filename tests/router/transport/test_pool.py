"""The lean HTTP/1.1 pool against a real loopback server that answers scripted bytes.

The server runs in the test's loop (asyncio.start_server); each request it reads is answered
by the next script entry: raw bytes to send, then whether to close. So every framing a backend
may use (Content-Length, chunked, close-delimited, Connection: close, HTTP/1.0) and every way a
connection can end is exercised on the wire, not mocked.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from llm_backends.router.transport import (
    ConnectError,
    HttpPool,
    InvalidURL,
    ProtocolError,
    ServerDisconnected,
)
from llm_backends.router.transport.connection import HIGH_WATER
from llm_backends.router.transport.pool import parse_url
from tests.router.transport.tls import self_signed

JSON = (("Content-Type", "application/json"),)


def ok(body: bytes, *extra: str) -> bytes:
    head = "".join(f"{line}\r\n" for line in extra)
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), head.encode(), body)


@dataclass
class Reply:
    data: bytes
    close: bool = False
    #: Hold the answer until this event is set (a server that thinks for a while).
    hold: asyncio.Event | None = None


@dataclass
class ScriptedServer:
    replies: deque[Reply] = field(default_factory=deque)
    requests: list[tuple[bytes, bytes, int]] = field(default_factory=list)  # head, body, conn
    connections: int = 0
    closed_by_client: int = 0
    server: asyncio.Server | None = None
    port: int = 0
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def wait_requests(self, count: int) -> None:
        async with self.arrived:
            await self.arrived.wait_for(lambda: len(self.requests) >= count)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/x"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                self.requests.append((head, body, number))
                async with self.arrived:
                    self.arrived.notify_all()
                reply = self.replies.popleft()
                if reply.hold is not None:
                    await reply.hold.wait()
                writer.write(reply.data)
                await writer.drain()
                if reply.close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed_by_client += 1
        finally:
            writer.close()


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    scripted = ScriptedServer()
    scripted.server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
    scripted.port = scripted.server.sockets[0].getsockname()[1]
    try:
        yield scripted
    finally:
        scripted.server.close()


@pytest.fixture
async def pool() -> AsyncIterator[HttpPool]:
    client = HttpPool(asyncio.get_running_loop(), max_connections=4)
    try:
        yield client
    finally:
        await client.close()


async def fetch(pool: HttpPool, url: str, body: bytes = b"{}", **kwargs: float) -> bytes:
    response = await pool.request(b"POST", url, body, JSON, connect_timeout=2, **kwargs)
    try:
        data, more = await response.read(1 << 20)
        assert not more
        return data
    finally:
        response.release()


async def test_request_line_headers_and_body_reach_the_server(
    server: ScriptedServer, pool: HttpPool
) -> None:
    server.replies.append(Reply(ok(b'{"a":1}')))
    assert await fetch(pool, server.url + "?q=1", b'{"model":"m"}') == b'{"a":1}'
    head, body, _ = server.requests[0]
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v1/x?q=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.port}" in lines
    assert "Content-Type: application/json" in lines and "Content-Length: 13" in lines
    assert body == b'{"model":"m"}'


async def test_a_keep_alive_connection_is_reused(server: ScriptedServer, pool: HttpPool) -> None:
    server.replies.extend([Reply(ok(b"1")), Reply(ok(b"2"))])
    assert [await fetch(pool, server.url), await fetch(pool, server.url)] == [b"1", b"2"]
    assert server.connections == 1


async def test_connection_close_and_http_1_0_are_not_reused(
    server: ScriptedServer, pool: HttpPool
) -> None:
    server.replies.extend(
        [
            Reply(ok(b"1", "Connection: close"), close=True),
            Reply(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n2", close=True),
            Reply(ok(b"3")),
        ]
    )
    assert [await fetch(pool, server.url) for _ in range(3)] == [b"1", b"2", b"3"]
    assert server.connections == 3


async def test_chunked_and_close_delimited_bodies(server: ScriptedServer, pool: HttpPool) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    until_close = b"HTTP/1.1 200 OK\r\n\r\nuntil the end"
    server.replies.extend([Reply(chunked), Reply(until_close, close=True), Reply(ok(b"x"))])
    assert await fetch(pool, server.url) == b"abcde"
    assert await fetch(pool, server.url) == b"until the end"
    assert await fetch(pool, server.url) == b"x"
    assert server.connections == 2  # chunked reused; close-delimited is never reused


async def test_a_stale_keep_alive_connection_is_replaced_once(
    server: ScriptedServer, pool: HttpPool
) -> None:
    """The server closed the parked connection just as we reuse it: sent again, fresh."""
    server.replies.extend([Reply(ok(b"1")), Reply(b"", close=True), Reply(ok(b"2"))])
    assert await fetch(pool, server.url) == b"1"
    assert await fetch(pool, server.url) == b"2"
    assert [number for *_, number in server.requests] == [1, 1, 2]


async def test_a_fresh_connection_closed_without_an_answer_is_not_retried(
    server: ScriptedServer, pool: HttpPool
) -> None:
    server.replies.extend([Reply(b"", close=True), Reply(ok(b"never"))])
    with pytest.raises(ServerDisconnected) as raised:
        await fetch(pool, server.url)
    assert not raised.value.in_body
    assert len(server.requests) == 1


async def test_a_body_cut_by_the_server_says_so(server: ScriptedServer, pool: HttpPool) -> None:
    server.replies.append(Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", close=True))
    with pytest.raises(ServerDisconnected) as raised:
        await fetch(pool, server.url)
    assert raised.value.in_body


async def test_garbage_is_a_protocol_error(server: ScriptedServer, pool: HttpPool) -> None:
    server.replies.append(Reply(b"SSH-2.0-OpenSSH\r\n\r\n", close=True))
    with pytest.raises(ProtocolError, match="bad HTTP response"):
        await fetch(pool, server.url)


async def test_refused_and_invalid_urls(pool: HttpPool, refused_url: str) -> None:
    with pytest.raises(ConnectError) as raised:
        await fetch(pool, refused_url)
    assert raised.value.os_error.errno is not None
    for url in ("ftp://host/x", "http:///nohost", "http://host:99999/"):
        with pytest.raises(InvalidURL):
            await fetch(pool, url)


async def test_whole_answer_deadline_and_per_read_timeout(
    server: ScriptedServer, pool: HttpPool
) -> None:
    held = asyncio.Event()
    server.replies.append(Reply(ok(b"late"), hold=held))
    with pytest.raises(TimeoutError):
        await fetch(pool, server.url, total=0.05)
    server.replies.append(Reply(ok(b"late"), hold=held))
    with pytest.raises(TimeoutError):
        await fetch(pool, server.url, read_timeout=0.05)
    held.set()
    # Timed-out connections were dropped, not parked with an answer still to come.
    server.replies.append(Reply(ok(b"fine")))
    assert await fetch(pool, server.url) == b"fine"
    assert server.requests[-1][2] == 3


async def test_an_unread_answer_closes_the_connection(
    server: ScriptedServer, pool: HttpPool
) -> None:
    """A consumer that stops early: the server sees the disconnect; nothing is reused."""
    body = b"x" * (4 * HIGH_WATER)
    server.replies.extend([Reply(ok(body)), Reply(ok(b"next"))])
    response = await pool.request(b"POST", server.url, b"", JSON, connect_timeout=2)
    assert await response.read_chunk()
    assert pool.in_use == 1
    response.release()
    assert pool.in_use == 0
    assert await fetch(pool, server.url) == b"next"
    assert server.connections == 2
    assert server.closed_by_client >= 1


async def test_a_large_answer_is_read_whole_through_flow_control(
    server: ScriptedServer, pool: HttpPool
) -> None:
    body = bytes(range(256)) * (3 * HIGH_WATER // 256)
    server.replies.append(Reply(ok(body)))
    assert await fetch(pool, server.url) == body


async def test_read_caps_the_body(server: ScriptedServer, pool: HttpPool) -> None:
    server.replies.append(Reply(ok(b"0123456789")))
    response = await pool.request(b"POST", server.url, b"", JSON, connect_timeout=2)
    assert await response.read(4) == (b"0123", True)
    response.release()


async def test_max_connections_makes_requests_wait_their_turn(server: ScriptedServer) -> None:
    pool = HttpPool(asyncio.get_running_loop(), max_connections=2)
    held = asyncio.Event()
    server.replies.extend([Reply(ok(b"r"), hold=held) for _ in range(5)])
    calls = [asyncio.create_task(fetch(pool, server.url)) for _ in range(5)]
    await server.wait_requests(2)
    assert server.connections == 2 and len(server.requests) == 2
    held.set()
    assert await asyncio.gather(*calls) == [b"r"] * 5
    assert server.connections == 2
    await pool.close()


async def test_https_with_the_pools_tls_context() -> None:
    cert, key, trusted = self_signed()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    scripted = ScriptedServer()
    scripted.replies.append(Reply(ok(b"secure")))
    tls_server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0, ssl=server_context)
    port = tls_server.sockets[0].getsockname()[1]
    pool = HttpPool(asyncio.get_running_loop(), tls=trusted)
    try:
        assert await fetch(pool, f"https://localhost:{port}/v1/x") == b"secure"
        assert f"Host: localhost:{port}".encode() in scripted.requests[0][0]
    finally:
        await pool.close()
        tls_server.close()


def test_parse_url_brackets_ipv6_and_omits_default_ports() -> None:
    assert parse_url("http://[::1]:8000/v1").host_header == b"[::1]:8000"
    assert parse_url("https://example.com/v1").host_header == b"example.com"
    assert parse_url("http://example.com:80").path == b"/"
