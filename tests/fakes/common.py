"""What the fake inference servers share: per-test behaviour, request recording, the handle.

A fake runs for the whole test session (uvicorn in a thread, see `server.py`); each test gets
it back with its behaviour reset and its recordings cleared (see `fixtures.py`). Tests steer
it through `FakeServer`:

    fake.behaviour.reply = "Paris"          # or fake.configure(reply="Paris", chunks=2)
    fake.fail(404, "model 'x' not found")   # every answer is this error until reset
    fake.once(status=503)                   # only the next request fails, then back to normal
    ... call the backend ...
    assert fake.requests[-1].body["options"]["temperature"] == 0
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson
from starlette.requests import Request
from starlette.types import Receive, Scope, Send


@dataclass
class Behaviour:
    """How a fake answers. Tests set fields; the fixture resets them before each test.

    Stream "pieces" are the content events (Ollama lines, SSE data events) carrying the reply;
    the reply is split into `chunks` of them, and each piece counts as one completion token.
    """

    #: The whole answer text.
    reply: str = "Hello from the fake server."
    #: How many content pieces a stream splits `reply` into (and the completion token count).
    chunks: int = 3
    #: Prompt token count reported in usage.
    prompt_tokens: int = 5
    #: finish reason reported ("stop" or "length"); Ollama calls it done_reason.
    finish_reason: str = "stop"
    #: Answer with this HTTP status and the server's error body (see `error`) when not 200.
    status: int = 200
    #: Message of error bodies, and of the in-band error sent by `error_after`.
    error: str = "fake failure"
    #: Seconds to wait before answering (before any header), ended early if the client leaves.
    delay: float = 0.0
    #: Stream: seconds to wait before each piece after the first one. Not streaming: seconds
    #: to wait between the two halves of the body (its full Content-Length is declared).
    stall: float = 0.0
    #: Send the status line and headers of a 200, then wait this long before any body byte.
    stall_headers: float = 0.0
    #: A `Retry-After` header on error answers (e.g. with `status=503`).
    retry_after: str | None = None
    #: A body of at least this many bytes, sent chunked (no Content-Length): the reply (or,
    #: with `status`, the error message) padded with spaces, still valid JSON. Streams: the
    #: first line/event is that big.
    huge: int = 0
    #: 200 with a body that is not JSON (streams: the first line/event is not JSON).
    garbage: bool = False
    #: 200 with JSON lacking the reply text field (and, in streams, Ollama's `done`).
    missing_fields: bool = False
    #: Stream: end the body cleanly after N pieces without the protocol's terminator.
    #: Not streaming: send only the first half of the JSON body.
    cut_after: int | None = None
    #: Stream: abort the connection after N pieces (chunked body never terminated).
    #: Not streaming: declare the full Content-Length, send half of it, abort.
    drop_after: int | None = None
    #: Stream: after N pieces send an in-band error object (status is already 200).
    error_after: int | None = None
    #: Models listed by /api/tags or /v1/models.
    models: list[str] = field(default_factory=lambda: ["llama3.2:latest", "phi3:mini"])
    #: Answer with these tool calls ({"name", "arguments": {...}}) when the request has tools.
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    #: Reasoning text sent (Ollama `thinking`, OpenAI `reasoning_content`) when asked to think.
    thinking: str = "Let me think."
    #: Answer 404 like the real server for a requested model that is not in `models`.
    enforce_models: bool = False

    def pieces(self) -> list[str]:
        """`reply` split into `chunks` consecutive pieces (some empty if reply is short)."""
        n, k = len(self.reply), max(self.chunks, 1)
        return [self.reply[i * n // k : (i + 1) * n // k] for i in range(k)]

    def knows(self, model: str | None) -> bool:
        return not self.enforce_models or model in self.models


B = TypeVar("B", bound=Behaviour)


@dataclass(frozen=True)
class RecordedRequest:
    """One request a fake received, as it arrived."""

    method: str
    path: str
    #: The parsed JSON body, or None (GET, or a body that is not JSON: see `raw`).
    body: Any
    raw: bytes
    headers: dict[str, str]
    #: The client's TCP port: equal ports mean one reused keep-alive connection.
    client_port: int | None


class FakeState(Generic[B]):
    """Everything a fake app reads and writes; shared between the server thread and tests.

    The server thread only appends to lists, pops the one-shot queue and sets an event, all
    of which are atomic in CPython, so no lock is needed.
    """

    def __init__(self, behaviour_type: type[B]) -> None:
        self.behaviour_type = behaviour_type
        self.behaviour: B = behaviour_type()
        self.requests: list[RecordedRequest] = []
        self.one_shots: deque[dict[str, Any]] = deque()
        self.aborted = 0
        self.abort_event = threading.Event()

    def reset(self) -> None:
        self.behaviour = self.behaviour_type()
        self.requests.clear()
        self.one_shots.clear()
        self.aborted = 0
        self.abort_event.clear()

    def behaviour_for_next(self) -> B:
        """The behaviour of a request arriving now: a queued one-shot change applies once."""
        try:
            changes = self.one_shots.popleft()
        except IndexError:
            return self.behaviour
        return dataclasses.replace(self.behaviour, **changes)

    def note_abort(self) -> None:
        """The client went away before the answer ended."""
        self.aborted += 1
        self.abort_event.set()

    async def record(self, request: Request) -> RecordedRequest:
        raw = await request.body()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        port = request.client.port if request.client else None
        recorded = RecordedRequest(
            request.method, request.url.path, body, raw, dict(request.headers), port
        )
        self.requests.append(recorded)
        return recorded


@dataclass
class FakeServer(Generic[B]):
    """The handle tests get: where the fake listens and how to steer and inspect it."""

    url: str
    state: FakeState[B]

    @property
    def behaviour(self) -> B:
        return self.state.behaviour

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.state.requests

    @property
    def bodies(self) -> list[Any]:
        """The JSON bodies of the POSTs received, oldest first."""
        return [r.body for r in self.state.requests if r.method == "POST"]

    @property
    def aborted(self) -> int:
        """How many answers the client abandoned (disconnected before their end)."""
        return self.state.aborted

    def configure(self, **changes: Any) -> B:
        """Set behaviour fields by name (a typo raises instead of being ignored)."""
        for name, value in changes.items():
            if not hasattr(self.state.behaviour, name):
                raise AttributeError(f"{type(self.state.behaviour).__name__} has no {name!r}")
            setattr(self.state.behaviour, name, value)
        return self.state.behaviour

    def fail(self, status: int, error: str = "fake failure") -> None:
        """Every request gets HTTP `status` with the server's error body saying `error`."""
        self.configure(status=status, error=error)

    def once(self, **changes: Any) -> None:
        """The next request (only) sees the behaviour with `changes`; calls queue up."""
        for name in changes:
            if not hasattr(self.state.behaviour, name):
                raise AttributeError(f"{type(self.state.behaviour).__name__} has no {name!r}")
        self.state.one_shots.append(changes)

    def reset(self) -> None:
        self.state.reset()

    def wait_for_abort(self, timeout: float = 5.0) -> bool:
        """Block until the client abandons an answer (True) or `timeout` passes (False)."""
        return self.state.abort_event.wait(timeout)

    async def aborted_within(self, seconds: float = 5.0) -> bool:
        """`wait_for_abort` for async tests (waits in a thread, the loop keeps running)."""
        return await asyncio.to_thread(self.state.abort_event.wait, seconds)


async def pause(request: Request, seconds: float) -> bool:
    """Wait `seconds` unless the client disconnects first; True if it did.

    Used for `delay` so that a client that timed out doesn't leave the fake sleeping.
    Call only after the body has been read.
    """
    return await _left_within(request.receive, seconds)


async def _left_within(receive: Receive, seconds: float) -> bool:
    if seconds <= 0:
        return False
    try:
        async with asyncio.timeout(seconds):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        return False
    return True


class DropConnection(Exception):
    """Raised inside a response to make uvicorn abort the connection mid-body."""


class TruncatedResponse:
    """ASGI response that declares a full Content-Length, sends half the body, then aborts."""

    def __init__(self, body: bytes, media_type: str = "application/json") -> None:
        self.body = body
        self.media_type = media_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [
            (b"content-type", self.media_type.encode()),
            (b"content-length", str(len(self.body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        half = self.body[: len(self.body) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})
        raise DropConnection("fake server drops the connection on purpose")


class PausedResponse:
    """ASGI response sent in `parts`, waiting `pauses[i]` seconds before part i (the headers
    always go out first). A client leaving before the end abandons the answer.

    `declare_length=False` sends the body chunked, without a Content-Length.
    """

    def __init__(
        self,
        state: FakeState[Any],
        parts: list[bytes],
        pauses: list[float],
        *,
        media_type: str = "application/json",
        declare_length: bool = True,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.state = state
        self.parts = parts
        self.pauses = pauses
        self.media_type = media_type
        self.declare_length = declare_length
        self.status = status
        self.headers = headers or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", self.media_type.encode())]
        headers += [(name.lower().encode(), value.encode()) for name, value in self.headers.items()]
        if self.declare_length:
            length = sum(len(part) for part in self.parts)
            headers.append((b"content-length", str(length).encode()))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        last = len(self.parts) - 1
        for i, (part, wait) in enumerate(zip(self.parts, self.pauses, strict=True)):
            if await _left_within(receive, wait):
                self.state.note_abort()
                return
            try:
                await send({"type": "http.response.body", "body": part, "more_body": i < last})
            except OSError:  # the client left mid-body (servers on ASGI spec 2.4 raise this)
                self.state.note_abort()
                return
            if i < last and await _left_within(receive, 0.001):
                self.state.note_abort()  # it left while the previous part was on its way
                return


def paced_whole(state: FakeState[Any], behaviour: Behaviour, body: bytes) -> PausedResponse | None:
    """A whole (not streamed) 200 body with the timing faults of `behaviour`, or None."""
    if behaviour.huge:
        parts = pieces_of(body)
        return PausedResponse(state, parts, [0.0] * len(parts), declare_length=False)
    if behaviour.stall_headers:
        return PausedResponse(state, [body], [behaviour.stall_headers])
    if behaviour.stall:
        half = len(body) // 2
        return PausedResponse(state, [body[:half], body[half:]], [0.0, behaviour.stall])
    return None


def huge_error(
    state: FakeState[Any], status: int, body: bytes, headers: dict[str, str]
) -> PausedResponse:
    """An error answer whose (already padded) body goes out chunked, for `huge`."""
    parts = pieces_of(body)
    return PausedResponse(
        state, parts, [0.0] * len(parts), status=status, headers=headers, declare_length=False
    )


def pieces_of(body: bytes, size: int = 65536) -> list[bytes]:
    """`body` cut into `size`-byte parts (how a big body goes out chunk by chunk)."""
    return [body[i : i + size] for i in range(0, len(body), size)] or [b""]


def padded(text: str, size: int) -> str:
    """`text` followed by spaces up to `size` characters (for `huge` answers)."""
    return text + " " * max(size - len(text), 0)


def json_line(data: Any) -> bytes:
    return orjson.dumps(data) + b"\n"


def sse_event(data: Any) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


async def scripted_stream(
    state: FakeState[Any],
    behaviour: Behaviour,
    *,
    head: list[bytes],
    piece: Callable[[str], bytes],
    error: bytes,
    tail: list[bytes],
) -> AsyncIterator[bytes]:
    """A streamed body: `head`, one `piece(text)` per reply piece, `tail`, with the faults
    of `behaviour` applied; records an abort if the client leaves before the end.

    When the client disconnects, Starlette cancels this generator (in its sleep, typically).
    """
    texts = behaviour.pieces()
    finished = False
    try:
        if behaviour.stall_headers:
            # The response start (status and headers) has been sent before the first item.
            await asyncio.sleep(behaviour.stall_headers)
        for item in head:
            yield item
        for i in range(len(texts) + 1):
            if i == behaviour.cut_after:
                finished = True
                return
            if i == behaviour.drop_after:
                finished = True
                raise DropConnection("fake server drops the connection on purpose")
            if i == behaviour.error_after:
                finished = True
                yield error
                return
            if i == len(texts):
                break
            if i and behaviour.stall:
                await asyncio.sleep(behaviour.stall)
            yield piece(padded(texts[i], behaviour.huge) if i == 0 else texts[i])
        for item in tail:
            yield item
        finished = True
    finally:
        if not finished:
            state.note_abort()
