"""uvicorn with a bounded, load-balancer-friendly shutdown.

Plain uvicorn stops accepting at the first SIGTERM and then waits for the longest stream,
however long. Here, from the first SIGINT or SIGTERM:

- at once: `/ready` answers 503 (`Drain.begin`), so a load balancer polling readiness (a
  Kubernetes Service, the client-side balancer of the tests) stops sending;
- after `shutdown_delay` (SIGTERM only; SIGINT has none, so Ctrl-C is prompt): the listener
  closes, idle connections close, requests in flight go on;
- at `shutdown_grace` after the signal: requests still running are cancelled with
  `SHUTDOWN_CUT`; a stream ends with its protocol's error event (gateway/streaming.py), and
  the process exits. A process with nothing in flight exits as soon as the listener closes.

Later signals can only bring these moments forward (a SIGINT during the lame duck closes the
listener at once); they never extend them.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from types import FrameType

import structlog
import uvicorn

from llm_backends.shutdown import SHUTDOWN_CUT, Drain

log = structlog.get_logger("llm_backends.serving")

#: uvicorn's own cancel of whatever is left, after our cut had its chance to end streams.
BACKSTOP_SECONDS = 1.0


class DrainingServer(uvicorn.Server):
    """uvicorn.Server whose signal handling follows the module docstring."""

    def __init__(self, config: uvicorn.Config, drain: Drain, *, delay: float, grace: float) -> None:
        super().__init__(config)
        self.drain = drain
        self.delay = delay
        self.grace = grace
        self._loop: asyncio.AbstractEventLoop | None = None
        self._close_at: float | None = None
        self._cut_at: float | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._cut_timer: asyncio.TimerHandle | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Runs in the signal handler: only hands the signal to the loop. The signal is not
        re-raised after shutdown (uvicorn's default), so a drained process exits with 0."""
        if self._loop is None:
            self.should_exit = True
            return
        self._loop.call_soon_threadsafe(self._on_signal, sig)

    def _on_signal(self, sig: int) -> None:
        assert self._loop is not None
        now = self._loop.time()
        first = not self.drain.draining
        self.drain.begin()
        # Before start-up completed there is nobody to be a lame duck for; and the lame
        # duck cannot outlast the grace period.
        delay = min(self.delay, self.grace) if sig == signal.SIGTERM and self.started else 0.0
        if first:
            log.info(
                "shutdown_started",
                signal=signal.Signals(sig).name,
                lame_duck_seconds=delay,
                grace_seconds=self.grace,
            )
        if self._close_at is None or now + delay < self._close_at:
            self._close_at = now + delay
            if self._close_timer is not None:
                self._close_timer.cancel()
            self._close_timer = self._loop.call_at(self._close_at, self._stop_accepting)
        if self._cut_at is None or now + self.grace < self._cut_at:
            self._cut_at = now + self.grace
            if self._cut_timer is not None:
                self._cut_timer.cancel()
            self._cut_timer = self._loop.call_at(self._cut_at, self._cut)

    def _stop_accepting(self) -> None:
        """uvicorn's own shutdown from here: close listeners and idle connections, wait for
        the rest; its timeout is only a backstop behind `_cut`."""
        assert self._loop is not None and self._cut_at is not None
        remaining = max(0.0, self._cut_at - self._loop.time())
        self.config.timeout_graceful_shutdown = remaining + BACKSTOP_SECONDS  # type: ignore[assignment]
        self.should_exit = True

    def _cut(self) -> None:
        tasks = list(self.server_state.tasks)
        if tasks:
            log.warning("shutdown_grace_expired", requests_ended=len(tasks))
        for task in tasks:
            task.cancel(SHUTDOWN_CUT)
