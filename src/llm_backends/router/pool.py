"""What a router binds to one event loop: its HTTP clients and the backend objects.

Two clients: `client`, the lean keep-alive pool of `router.transport`, for the backend calls
on the request path; `session`, aiohttp, for everything else (health probes, the Admin API,
the change feed). Both belong to the loop they were created in, and the process-wide router
may outlive a loop (each `asyncio.run()` of a script makes a new one). So they are created
lazily inside the running loop, and a small guard task notices the loop's shutdown
(`asyncio.run` cancels every task before closing the loop): it lets the router flush its stats
and closes them there, so scripts that never call `close()` exit cleanly.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable

import aiohttp

from llm_backends.router.backends import backend_classes
from llm_backends.router.backends.base import Backend
from llm_backends.router.transport import HttpPool


class LoopScope:
    """The HTTP clients and backends of one event loop."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        *,
        connect_timeout: float,
        max_connections: int,
        max_response_bytes: int,
        on_loop_end: Callable[[], Awaitable[object]],
    ) -> None:
        self.loop = loop
        #: The thread running `loop` (a scope is made inside its loop).
        self.thread = threading.get_ident()
        self.connect_timeout = connect_timeout
        self.max_response_bytes = max_response_bytes
        connector = aiohttp.TCPConnector(
            limit=max_connections,
            limit_per_host=0,
            keepalive_timeout=60,
            ttl_dns_cache=300,
        )
        # Per-request timeouts come from each config; this default only bounds connecting.
        # Inference servers set no cookies: skipping the jar saves work on every request.
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self.client = HttpPool(loop, max_connections=max_connections, keepalive_seconds=60)
        self.closed = False
        self._backends: dict[str, Backend] = {}
        self._on_loop_end = on_loop_end
        self._guard = loop.create_task(self._watch_loop_end(), name="llm-router-loop-guard")

    def backend(self, kind: str) -> Backend | None:
        """The backend object for a `backend_type`, None when no module speaks it."""
        backend = self._backends.get(kind)
        if backend is None:
            cls = backend_classes().get(kind)
            if cls is None:
                return None
            backend = self._backends[kind] = cls(
                self.client, self.connect_timeout, self.max_response_bytes
            )
        return backend

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._guard is not asyncio.current_task():
            self._guard.cancel()
        await self.client.close()
        await self.session.close()

    async def _watch_loop_end(self) -> None:
        try:
            await self.loop.create_future()
        except asyncio.CancelledError:
            if not self.closed:
                # The loop is shutting down without close(): report stats, free the sockets.
                try:
                    await self._on_loop_end()
                finally:
                    await self.close()
            raise
