"""The server's HTTP protocol (serving/protocol.py): uvicorn's, with the head written with the
body and a lazy keep-alive timer. Writes are counted on a recording transport; everything
else runs over real sockets against a real uvicorn server with `serve`'s options."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from llm_backends.serving import SERVER_OPTIONS
from llm_backends.serving import protocol as serving_protocol
from llm_backends.serving.protocol import PENDING_LIMIT, LeanHttpToolsProtocol
from tests.fakes.server import ServerThread

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

REQUEST = b"POST /x HTTP/1.1\r\nhost: t\r\ncontent-length: 2\r\n\r\n{}"
BODY = b'{"ok":true}'


async def whole(scope: Message, receive: Receive, send: Send) -> None:
    await receive()
    await answer(send)


async def answer(send: Send) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


async def streamed(scope: Message, receive: Receive, send: Send) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for part in (b"one", b"two"):
        await send({"type": "http.response.body", "body": part, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 5000)}.get(name)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def connect(
    app: Any, request: bytes
) -> tuple[LeanHttpToolsProtocol, RecordingTransport, ServerState]:
    """A fresh protocol on a recording transport, fed `request`."""
    config = uvicorn.Config(app, log_level="warning", **SERVER_OPTIONS)
    state = ServerState()
    protocol = LeanHttpToolsProtocol(config, state, {}, _loop=asyncio.get_running_loop())
    transport = RecordingTransport()
    protocol.connection_made(transport)
    protocol.data_received(request)
    return protocol, transport, state


async def run_one(app: Any, request: bytes = REQUEST) -> RecordingTransport:
    """Feed `request` to a fresh protocol and wait until its answer is complete."""
    protocol, transport, state = connect(app, request)
    await asyncio.gather(*state.tasks)
    await asyncio.sleep(0)  # let a pending head flush run, if one was scheduled
    protocol.connection_lost(None)
    return transport


async def test_a_whole_answer_is_one_write() -> None:
    transport = await run_one(whole)
    assert len(transport.writes) == 1
    head, body = transport.writes[0].split(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 11" in head.split(b"\r\n")
    assert body == BODY


@pytest.fixture
def bursts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every chunk after the first write counts as part of a burst, however slow the
    machine (the real window is 200 µs after the last write ended)."""
    monkeypatch.setattr(serving_protocol, "BURST_SECONDS", 3600.0)


@pytest.mark.usefixtures("bursts")
async def test_a_stream_writes_its_head_with_the_first_chunk() -> None:
    transport = await run_one(streamed)
    assert transport.writes[0].endswith(b"\r\n\r\n3\r\none\r\n")
    assert b"transfer-encoding: chunked" in transport.writes[0]
    # The later chunk and the end, sent in the same step, go out together.
    assert transport.writes[1:] == [b"3\r\ntwo\r\n0\r\n\r\n"]


@pytest.mark.usefixtures("bursts")
async def test_chunks_sent_in_one_step_are_one_write_and_a_lone_chunk_is_not_held() -> None:
    """Several chunks in hand at once cost one send; a chunk followed by a wait goes out at
    the end of its loop iteration, before the app's next chunk exists."""
    release = asyncio.Event()

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"a", b"bb", b"ccc"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await release.wait()  # a slow token: what was sent must not wait for it
        await send({"type": "http.response.body", "body": b"d", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    protocol, transport, state = connect(app, REQUEST)
    for _ in range(3):  # loop turns, not time
        if len(transport.writes) == 2:
            break
        await asyncio.sleep(0)
    before_release = list(transport.writes)
    release.set()
    await asyncio.gather(*state.tasks)
    protocol.connection_lost(None)
    assert before_release[0].endswith(b"\r\n\r\n1\r\na\r\n")
    assert before_release[1:] == [b"2\r\nbb\r\n3\r\nccc\r\n"]
    assert transport.writes[2:] == [b"1\r\nd\r\n0\r\n\r\n"]


@pytest.mark.usefixtures("bursts")
async def test_held_chunks_are_written_once_they_reach_the_limit() -> None:
    """An app that sends a lot without ever waiting is not buffered whole: past the limit
    the held chunks are written, and the transport's flow control applies again."""
    part = b"x" * (PENDING_LIMIT // 2)

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(5):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        assert len(transport.writes) == 3  # head + first; then two held parts, written
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    protocol, transport, state = connect(app, REQUEST)
    await asyncio.gather(*state.tasks)
    protocol.connection_lost(None)
    assert all(len(w) < 2 * PENDING_LIMIT for w in transport.writes)
    body = b"".join(transport.writes).split(b"\r\n\r\n", 1)[1]
    assert body.count(part) == 5 and body.endswith(b"0\r\n\r\n")


async def test_a_chunk_that_is_no_burst_is_written_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tokens of a paced stream: each written within its send, no loop turn, nothing held."""
    monkeypatch.setattr(serving_protocol, "BURST_SECONDS", 0.0)
    seen: list[int] = []

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"a", b"b", b"c"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            seen.append(len(transport.writes))
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    protocol, transport, state = connect(app, REQUEST)
    await asyncio.gather(*state.tasks)
    protocol.connection_lost(None)
    assert seen == [1, 2, 3]
    assert transport.writes[1:] == [b"1\r\nb\r\n", b"1\r\nc\r\n", b"0\r\n\r\n"]


@pytest.mark.usefixtures("bursts")
async def test_held_chunks_are_dropped_when_the_client_is_gone() -> None:
    async def app(scope: Message, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b", "more_body": True})
        protocol.connection_lost(None)  # the client went away within the same step

    protocol, transport, state = connect(app, REQUEST)
    await asyncio.gather(*state.tasks)
    await asyncio.sleep(0)  # the loop's turn, when held chunks would be written
    assert len(transport.writes) == 1 and transport.writes[0].endswith(b"1\r\na\r\n")


async def test_a_head_without_a_body_goes_out_at_the_loops_turn() -> None:
    """A long poll's head must not wait for its body."""
    release = asyncio.Event()
    head_seen: list[bytes] = []

    async def long_poll(scope: Message, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await release.wait()
        await send({"type": "http.response.body", "body": b"late"})

    protocol, transport, state = connect(long_poll, REQUEST)
    for _ in range(3):  # loop turns, not time: the head is written at the end of the first
        if transport.writes:
            break
        await asyncio.sleep(0)
    head_seen.extend(transport.writes)
    assert not release.is_set()
    release.set()
    await asyncio.gather(*state.tasks)
    protocol.connection_lost(None)
    assert head_seen[0].startswith(b"HTTP/1.1 200 OK\r\n") and head_seen[0].endswith(b"\r\n\r\n")
    assert transport.writes[1] == b"4\r\nlate\r\n0\r\n\r\n"


async def test_a_head_request_gets_the_head_only() -> None:
    transport = await run_one(whole, b"HEAD /x HTTP/1.1\r\nhost: t\r\n\r\n")
    assert len(transport.writes) == 1
    assert transport.writes[0].endswith(b"content-length: 11\r\n\r\n")


@pytest.mark.parametrize("bad", [(b"x-a", b"one\r\ntwo"), (b"x a", b"v")])
async def test_an_invalid_header_closes_the_connection_without_an_answer(
    bad: tuple[bytes, bytes],
) -> None:
    async def app(scope: Message, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [bad]})
        await send({"type": "http.response.body", "body": b""})

    transport = await run_one(app)
    assert transport.closed
    assert transport.writes == []


# -- over real sockets -----------------------------------------------------------------------


def with_lifespan(app: Any) -> Any:
    """`app`, answering the lifespan protocol the test servers run."""

    async def wrapped(scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            return await app(scope, receive, send)
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return None

    return wrapped


@pytest.fixture
def server() -> Iterator[ServerThread]:
    thread = ServerThread(with_lifespan(whole), timeout_keep_alive=0.3, **SERVER_OPTIONS).start()
    try:
        yield thread
    finally:
        thread.stop()


def read_answer(sock: socket.socket, buffer: bytearray) -> bytes:
    """One whole answer (content-length framed) off the socket; the rest stays in buffer."""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        assert data, "connection closed before an answer"
        buffer += data
    head, _, _ = bytes(buffer).partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    end = len(head) + 4 + length
    while len(buffer) < end:
        buffer += sock.recv(65536)
    answer = bytes(buffer[:end])
    del buffer[:end]
    return answer


def test_pipelined_requests_are_answered_in_order_on_one_connection(server: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(REQUEST * 3)
        buffer = bytearray()
        answers = [read_answer(sock, buffer) for _ in range(3)]
    assert all(a.startswith(b"HTTP/1.1 200 OK") and a.endswith(BODY) for a in answers)


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout(server: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        buffer = bytearray()
        for _ in range(2):  # kept alive between answers
            sock.sendall(REQUEST)
            assert read_answer(sock, buffer).endswith(BODY)
        assert sock.recv(1) == b""  # then closed by the server (the recv times out otherwise)


def test_a_request_running_past_the_keep_alive_timeout_is_answered() -> None:
    """The lazy timer fires while the connection is busy and leaves it open."""
    held: list[tuple[asyncio.Event, asyncio.AbstractEventLoop]] = []

    async def slow(scope: Message, receive: Receive, send: Send) -> None:
        await receive()
        gate = asyncio.Event()
        held.append((gate, asyncio.get_running_loop()))
        await gate.wait()
        await answer(send)

    thread = ServerThread(with_lifespan(slow), timeout_keep_alive=0.05, **SERVER_OPTIONS).start()
    try:
        with socket.create_connection(("127.0.0.1", thread.port), timeout=10) as sock:
            buffer = bytearray()
            for _ in range(2):
                sock.sendall(REQUEST)
                # Several keep-alive timeouts pass with the request held: no answer, no close.
                sock.settimeout(0.3)
                with pytest.raises(TimeoutError):
                    sock.recv(1)
                sock.settimeout(10)
                gate, loop = held[-1]
                loop.call_soon_threadsafe(gate.set)
                assert read_answer(sock, buffer).endswith(BODY)
    finally:
        thread.stop()
