"""Backends that misbehave below HTTP: tiny asyncio TCP servers on loopback, in a thread.

The Starlette fakes can only misbehave once a request has been parsed and routed; these
misbehave at the socket. Each connection runs one `Conduct`:

- `silent`: accept the connection, read the request, never send a byte (a hung process
  whose kernel still accepts connections).
- `declared_huge`: send a 200 whose headers declare an enormous Content-Length, then nothing
  (a hostile server announcing a body that would exhaust memory).
- `drip`: send a 200 and then its body a byte every 50 ms, never finishing (a server that is
  never silent long enough for a per-read timeout, yet never answers).

`with raw_server("silent") as server:` ... `server.url`, `server.accepted` (connections
accepted so far), `server.open` (connections the client has not closed yet).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Literal

from tests.fakes.server import free_port

Conduct = Literal["silent", "declared_huge", "drip"]

#: What `declared_huge` claims its body is: a terabyte.
HUGE_LENGTH = 10**12


async def _drain_until_closed(reader: asyncio.StreamReader) -> None:
    """Read (and ignore) whatever the client sends until it closes the connection."""
    while await reader.read(65536):
        pass


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await _drain_until_closed(reader)


async def _declared_huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")  # the request head; its body is not needed
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n{" % HUGE_LENGTH
    )
    await writer.drain()
    await _drain_until_closed(reader)


async def _drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n"
    )
    while True:
        writer.write(b" ")
        await writer.drain()
        await asyncio.sleep(0.05)


_CONDUCTS: dict[Conduct, Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]]
_CONDUCTS = {"silent": _silent, "declared_huge": _declared_huge, "drip": _drip}


class RawServer:
    """A loopback TCP server whose every connection follows one `Conduct`."""

    def __init__(self, conduct: Conduct) -> None:
        self.conduct = _CONDUCTS[conduct]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self.open = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def start(self) -> RawServer:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _call(self, coroutine: Awaitable[None]) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        self._writers.add(writer)
        try:
            with suppress(ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                await self.conduct(reader, writer)
        finally:
            self.open -= 1
            self._writers.discard(writer)
            writer.transport.abort()


@contextmanager
def raw_server(conduct: Conduct) -> Iterator[RawServer]:
    server = RawServer(conduct).start()
    try:
        yield server
    finally:
        server.stop()
