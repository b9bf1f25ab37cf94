"""Cancel the work of a request whose client has gone away.

uvicorn keeps running a handler after its client disconnects; for a generation that means a
backend keeps computing an answer nobody will read. While a handler waits on the router, a
watcher task waits on ASGI `receive` (after the body, the only message left is
`http.disconnect`) and cancels the handler, which closes the upstream request.

The watcher starts only once the wait has lasted `WATCH_AFTER` seconds: a task per request
costs ~10 µs, and most answers of a fast backend come sooner. A client that left earlier is
noticed then (the server remembers the disconnect), so at most that much later.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

import structlog
from starlette.types import Receive

log = structlog.get_logger("llm_backends.gateway")

#: Seconds of waiting before a watcher task is started.
WATCH_AFTER = 0.05


class ClientDisconnected(Exception):
    """The client went away while the gateway was waiting for the backend."""


class CancelOnDisconnect:
    """`async with CancelOnDisconnect(request.receive):` - raises ClientDisconnected inside.

    Only for use after the request body has been read completely.
    """

    __slots__ = ("_gone", "_receive", "_task", "_timer", "_watcher")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._gone = False
        self._task: asyncio.Task[object] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._watcher: asyncio.Task[None] | None = None

    async def __aenter__(self) -> CancelOnDisconnect:
        self._task = asyncio.current_task()
        self._timer = asyncio.get_running_loop().call_later(WATCH_AFTER, self._start_watching)
        return self

    def _start_watching(self) -> None:
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        assert self._timer is not None and self._task is not None
        self._timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
        if self._gone and isinstance(exc, asyncio.CancelledError):
            # Our own cancellation: turn it into an exception the handler can answer.
            # Another pending cancel (server shutdown) still propagates.
            if self._task.uncancel() == 0:
                raise ClientDisconnected from exc
        return False

    async def _watch(self) -> None:
        try:
            while (await self._receive())["type"] != "http.disconnect":
                pass
        except Exception as error:  # a broken receive is no reason to cancel a request
            log.debug("disconnect_watch_failed", error=repr(error))
            return
        self._gone = True
        assert self._task is not None
        self._task.cancel()
