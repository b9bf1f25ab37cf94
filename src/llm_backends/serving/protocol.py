"""uvicorn's httptools protocol with fewer syscalls and timer operations per request.

Measured on the gateway's chat path (32 clients, instant backend), uvicorn's request cycle is
the largest single layer of the server's CPU, and most of it is the kernel: it writes a
response's status line and headers in one `send` and the body in another, and it cancels and
re-arms the keep-alive timer on every request. Here:

* the head is held until the first body message and goes out in the same write (a whole
  answer is one syscall, a stream's head and first chunk one); a head the app sends without
  a body in the same step (a long poll that answers later) is written at the end of the
  loop iteration, so no client waits on it;
* a stream's chunks that follow a write within `BURST_SECONDS` (they were already in hand: a
  backend read that brought several) go out in one write at the end of the loop iteration,
  not one `send` each; any other chunk is written at once (a token of a paced stream costs
  no more than before), and the head and first chunk are never held;
* the keep-alive timer is lazy: one timer per idle period, checked against the time the last
  answer ended, instead of a cancel and a new timer per request;
* the header block is validated with two regex searches in all, not two per header.

Everything else (parsing, pipelining, flow control, `Expect: 100-continue`, upgrades, the
concurrency limit, the ASGI error handling) is uvicorn's own, which this subclasses: the
version is pinned in pyproject.toml, and tests/serving drives the protocol over real sockets.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httptools
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import (
    HEADER_RE,
    HEADER_VALUE_RE,
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

CHUNK_END = b"0\r\n\r\n"
#: Held chunks beyond this many bytes are written at once: the transport's flow control
#: (which pauses a writer whose peer reads slowly) then bounds memory as it did before.
PENDING_LIMIT = 64 * 1024
#: A chunk sent this soon after the end of the last write is part of a burst, and held for
#: the end of the loop iteration. Chunks of one burst come tens of microseconds apart (one
#: step of the app); a model's tokens come milliseconds apart, and are written as they come.
BURST_SECONDS = 200e-6


class LeanCycle(RequestResponseCycle):
    """One request's response side: uvicorn's checks, with the head written with the body."""

    def __init__(self, *args: Any, loop: asyncio.AbstractEventLoop, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._loop = loop
        #: The status line and headers, until the first body message (or the loop's turn).
        self._head: bytes | None = None
        #: Stream chunks sent in this loop iteration, written together at its end.
        self._pending: list[bytes] | None = None
        self._pending_size = 0
        #: perf_counter() when this answer's last stream write ended.
        self._last_write = 0.0

    async def send(self, message: Any) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        if not self.response_started:
            if message["type"] != "http.response.start":
                raise RuntimeError(
                    f"Expected ASGI message 'http.response.start', but got '{message['type']}'."
                )
            self.response_started = True
            self.waiting_for_100_continue = False
            self._head = self._render_head(message["status"], message.get("headers", ()))
            self._loop.call_soon(self._flush_head)
            return
        if self.response_complete:
            raise RuntimeError(f"Unexpected ASGI message '{message['type']}' after the response.")
        if message["type"] != "http.response.body":
            raise RuntimeError(
                f"Expected ASGI message 'http.response.body', but got '{message['type']}'."
            )
        body = message.get("body", b"")
        more_body = message.get("more_body", False)
        if self.scope["method"] == "HEAD":
            self.expected_content_length = 0
            data = b""
        elif self.chunked_encoding:
            if body:
                data = b"%x\r\n%b\r\n" % (len(body), body)
                if not more_body:
                    data += CHUNK_END
            else:
                data = b"" if more_body else CHUNK_END
        else:
            if len(body) > self.expected_content_length:
                raise RuntimeError("Response content longer than Content-Length")
            self.expected_content_length -= len(body)
            data = body
        head = self._head
        if head is not None:
            self._head = None
            data = head + data
        elif more_body:
            if data:
                self._queue(data)
            return
        pending = self._pending
        if pending is not None:  # the end of the answer: what is held goes first, same write
            self._pending = None
            pending.append(data)
            data = b"".join(pending)
        if more_body:  # a stream's head and first chunk
            self._write_stream(data)
            return
        if data:
            self.transport.write(data)
        if self.expected_content_length != 0:
            raise RuntimeError("Response content shorter than Content-Length")
        self.response_complete = True
        self.message_event.set()
        if not self.keep_alive:
            self.transport.close()
        self.on_response()

    def _queue(self, data: bytes) -> None:
        """A stream chunk: held if it is part of a burst, else written at once."""
        pending = self._pending
        if pending is not None:
            pending.append(data)
            self._pending_size += len(data)
            if self._pending_size >= PENDING_LIMIT:
                self._flush_pending()
            return
        if time.perf_counter() - self._last_write >= BURST_SECONDS:
            self._write_stream(data)
            return
        self._pending = [data]
        self._pending_size = len(data)
        self._loop.call_soon(self._flush_pending)

    def _flush_pending(self) -> None:
        """The chunks of one loop iteration, in one write. Dropped if the connection went
        away, or was closed after an app error (the answer was cut there anyway)."""
        pending = self._pending
        if pending is not None:
            self._pending = None
            if not self.disconnected and not self.transport.is_closing():
                self._write_stream(b"".join(pending))

    def _write_stream(self, data: bytes) -> None:
        """A write of a stream not yet ended; when it ended is what tells a burst."""
        self.transport.write(data)
        self._last_write = time.perf_counter()

    def _flush_head(self) -> None:
        head = self._head
        if head is not None and not self.disconnected and not self.transport.is_closing():
            self._head = None
            self.transport.write(head)

    def _render_head(self, status: int, app_headers: Any) -> bytes:
        """uvicorn's header handling: framing from content-length / transfer-encoding, a
        `connection: close` when the connection will not be kept, chunked when neither."""
        headers = self.default_headers + list(app_headers)
        content = [STATUS_LINE[status]]
        has_connection_close = False
        for name, value in headers:
            name = name.lower()
            if name == b"content-length" and self.chunked_encoding is None:
                self.expected_content_length = int(value.decode())
                self.chunked_encoding = False
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                self.expected_content_length = 0
                self.chunked_encoding = True
            elif name == b"connection":
                tokens = [token.lower().strip() for token in value.split(b",")]
                if b"close" in tokens:
                    self.keep_alive = False
                    has_connection_close = True
            content.extend((name, b": ", value, b"\r\n"))
        # Names may hold no separator and values no control character but tab: checked over
        # the whole block at once (a tab cannot hide a name's fault: tab is invalid in names).
        if HEADER_RE.search(b"".join([name for name, _ in headers])):
            raise RuntimeError("Invalid HTTP header name.")
        if HEADER_VALUE_RE.search(b"\t".join([value for _, value in headers])):
            raise RuntimeError("Invalid HTTP header value.")
        if not self.keep_alive and not has_connection_close:
            content.append(b"connection: close\r\n")
        if (
            self.chunked_encoding is None
            and self.scope["method"] != "HEAD"
            and status not in (204, 304)
        ):
            self.chunked_encoding = True
            content.append(b"transfer-encoding: chunked\r\n")
        content.append(b"\r\n")
        return b"".join(content)


class LeanHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol that runs `LeanCycle`s and a lazy keep-alive timer."""

    #: loop.time() when the last answer on this connection ended; None while one is running.
    _idle_since: float | None = None

    def _unset_keepalive_if_required(self) -> None:
        """uvicorn calls this on every `data_received` to cancel its timer: here it only marks
        the connection busy, and the lazy timer, when it fires, leaves a busy one open."""
        self._idle_since = None

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None

    def on_headers_complete(self) -> None:
        http_version = self.parser.get_http_version()
        method = self.parser.get_method()
        scope = self.scope
        scope["method"] = method.decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        if self.parser.should_upgrade() and self._should_upgrade():
            return
        parsed_url = httptools.parse_url(self.url)
        raw_path = parsed_url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            from urllib.parse import unquote

            path = unquote(path)
        scope["path"] = self.root_path + path
        scope["raw_path"] = self.root_path.encode("ascii") + raw_path
        scope["query_string"] = parsed_url.query or b""
        if self.limit_concurrency is not None and (
            len(self.connections) >= self.limit_concurrency
            or len(self.tasks) >= self.limit_concurrency
        ):
            app = service_unavailable
            self.logger.warning("Exceeded concurrency limit.")
        else:
            app = self.app
        existing_cycle = self.cycle
        self.cycle = LeanCycle(
            scope=scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=False,  # `serve` runs without uvicorn's access log
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=self.expect_100_continue,
            keep_alive=http_version != "1.0" and self.parser.should_keep_alive(),
            on_response=self.on_response_complete,
            loop=self.loop,
        )
        if existing_cycle is None or existing_cycle.response_complete:
            self._start_asgi_task(self.cycle, app)
        else:
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, app))

    def on_response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self._check_keep_alive
            )

    def _check_keep_alive(self) -> None:
        """Close the connection if it has been idle for the keep-alive timeout; else look
        again when it would be. A busy connection is armed again when its answer ends."""
        self.timeout_keep_alive_task = None
        idle_since = self._idle_since
        if idle_since is None or self.transport.is_closing():
            return
        left = idle_since + self.timeout_keep_alive - self.loop.time()
        if left <= 0:
            self.transport.close()
            return
        self.timeout_keep_alive_task = self.loop.call_later(left, self._check_keep_alive)
