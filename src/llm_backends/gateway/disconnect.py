"""Cancel the work of a request whose client has gone away.

uvicorn keeps running a handler after its client disconnects; for a generation that means a
backend keeps computing an answer nobody will read. While a handler waits on the router, a
watcher task waits on ASGI `receive` (after the body, the only message left is
`http.disconnect`) and cancels the handler, which closes the upstream request.

The watcher starts only once the wait has lasted `WATCH_AFTER` seconds: a task per request
costs ~10 µs, and most answers of a fast backend come sooner. A client that left earlier is
noticed then (the server remembers the disconnect), so at most that much later. The waits
of one app share one `DisconnectWatch` and its one timer: a timer per request (set, then
cancelled) cost more than the rest of the guard.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

import structlog
from starlette.types import Receive

log = structlog.get_logger("llm_backends.gateway")

#: Seconds of waiting before a watcher task is started.
WATCH_AFTER = 0.05
#: nginx's "client closed request": the status of an abandoned request (in the metrics; no
#: client reads it).
CLIENT_CLOSED = 499


class ClientDisconnected(Exception):
    """The client went away while the gateway was waiting for the backend."""


class DisconnectWatch:
    """The guards of one app still within their first `WATCH_AFTER` seconds, oldest first,
    and one timer for the oldest: it starts the watchers that are due, then re-arms."""

    __slots__ = ("_loop", "_timer", "_waiting")

    def __init__(self) -> None:
        #: guard -> when it started (loop time); insertion order is start order.
        self._waiting: dict[CancelOnDisconnect, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, guard: CancelOnDisconnect) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._waiting[guard] = now
        if self._timer is None or self._loop is not loop:
            self._loop = loop
            self._timer = loop.call_at(now + WATCH_AFTER, self._sweep)

    def discard(self, guard: CancelOnDisconnect) -> None:
        self._waiting.pop(guard, None)

    def _sweep(self) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None
        due = loop.time() - WATCH_AFTER
        waiting = self._waiting
        while waiting:
            guard, since = next(iter(waiting.items()))
            if since > due:
                self._timer = loop.call_at(since + WATCH_AFTER, self._sweep)
                return
            del waiting[guard]
            guard.start_watching()


class CancelOnDisconnect:
    """`async with CancelOnDisconnect(request.receive, watch):` - raises ClientDisconnected
    inside.

    Only for use after the request body has been read completely.
    """

    __slots__ = ("_gone", "_receive", "_task", "_watch", "_watcher")

    def __init__(self, receive: Receive, watch: DisconnectWatch) -> None:
        self._receive = receive
        self._watch = watch
        self._gone = False
        self._task: asyncio.Task[object] | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> CancelOnDisconnect:
        self._task = asyncio.current_task()
        self._watch.add(self)
        return self

    def start_watching(self) -> None:
        assert self._task is not None
        if self._task.done():  # its loop went away without leaving the block
            return
        self._watcher = self._task.get_loop().create_task(self._watch_receive())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        assert self._task is not None
        self._watch.discard(self)
        if self._watcher is not None:
            self._watcher.cancel()
        if self._gone and isinstance(exc, asyncio.CancelledError):
            # Our own cancellation: turn it into an exception the handler can answer.
            # Another pending cancel (server shutdown) still propagates.
            if self._task.uncancel() == 0:
                raise ClientDisconnected from exc
        return False

    async def _watch_receive(self) -> None:
        try:
            while (await self._receive())["type"] != "http.disconnect":
                pass
        except Exception as error:  # a broken receive is no reason to cancel a request
            log.debug("disconnect_watch_failed", error=repr(error))
            return
        self._gone = True
        assert self._task is not None
        self._task.cancel()
