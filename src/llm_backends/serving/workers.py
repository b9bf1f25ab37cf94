"""`serve --workers N`: N server processes sharing one listening socket.

The supervisor binds and listens once, then starts N spawned workers, each running its own
event loop, app and `DrainingServer` on that socket (the kernel hands each connection to one
of them). Compared with SO_REUSEPORT (one socket per worker), a shared socket never loses the
connections queued on a worker that exits, and a second server on the same port still fails
with "address in use" instead of silently sharing it.

SIGINT and SIGTERM are forwarded to every worker as they came (so SIGINT still has no lame
duck), and the supervisor waits for them: each bounds its own shutdown by the grace period.
A worker that dies on its own is replaced; one that fails during start-up stops the whole
server (it would fail the same way again).
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import socket
import sys
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType

import structlog
import uvicorn
from uvicorn.config import STARTUP_FAILURE

from llm_backends.logs import configure_logging
from llm_backends.serving.loglines import AtomicLines
from llm_backends.settings import Settings

log = structlog.get_logger("llm_backends.serving")

#: Beyond a worker's own grace period, how long the supervisor waits before SIGKILL.
KILL_AFTER_GRACE_SECONDS = 5.0

#: prctl(2) option: the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1

_spawn = multiprocessing.get_context("spawn")


def bind(host: str, port: int, log_level: str) -> socket.socket:
    """The shared listening socket; it queues connections while the workers start."""
    config = uvicorn.Config("llm_backends.app:app", host=host, port=port, log_level=log_level)
    sock = config.bind_socket()  # logs uvicorn's "running on" line; exits 3 if the port is taken
    sock.listen(config.backlog)
    return sock


def _die_with(parent: int) -> None:
    """A worker must not outlive a supervisor killed with SIGKILL (it would keep serving on
    the socket): Linux sends it SIGTERM then, which it drains like any other."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the supervisor's own stop still applies
        return
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _worker_main(host: str, port: int, sock: socket.socket, parent: int) -> None:
    """A worker process: the same server as `serve` without workers, on the shared socket."""
    from llm_backends.serving import run_server

    _die_with(parent)

    settings = Settings()
    configure_logging(
        settings.log_level,
        settings.log_json,
        flush_interval=settings.log_flush_interval,
        stream=AtomicLines(sys.stdout.fileno()),
    )
    run_server(settings, host, port, sockets=[sock])


class Supervisor:
    """Starts, replaces and stops the workers; see the module docstring."""

    def __init__(self, settings: Settings, host: str, port: int, workers: int) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self.count = workers
        self.stopping = False
        self.workers: list[BaseProcess] = []
        self._sock: socket.socket | None = None

    def run(self) -> int:
        self._sock = bind(self.host, self.port, self.settings.log_level.lower())
        previous = {
            sig: signal.signal(sig, self._forward) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.workers = [self._start() for _ in range(self.count)]
            log.info("workers_started", workers=self.count, pids=[w.pid for w in self.workers])
            return self._supervise()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._sock.close()

    def _start(self) -> BaseProcess:
        process = _spawn.Process(
            target=_worker_main, args=(self.host, self.port, self._sock, os.getpid()), daemon=False
        )
        process.start()
        return process

    def _forward(self, sig: int, frame: FrameType | None) -> None:
        first = not self.stopping
        self.stopping = True
        if first:
            log.info("workers_stopping", signal=signal.Signals(sig).name)
        for worker in self.workers:
            if worker.pid is not None and worker.exitcode is None:
                os.kill(worker.pid, sig)

    def _supervise(self) -> int:
        status = 0
        while not self.stopping:
            wait([w.sentinel for w in self.workers], timeout=0.5)
            for index, worker in enumerate(self.workers):
                if worker.exitcode is None or self.stopping:
                    continue
                if worker.exitcode == STARTUP_FAILURE:
                    log.error("worker_failed_to_start", pid=worker.pid)
                    status = STARTUP_FAILURE
                    self._forward(signal.SIGINT, None)
                    break
                log.warning("worker_died", pid=worker.pid, exitcode=worker.exitcode)
                self.workers[index] = self._start()
        self._join()
        return status

    def _join(self) -> None:
        bound = (
            self.settings.shutdown_delay_seconds
            + self.settings.shutdown_grace_seconds
            + KILL_AFTER_GRACE_SECONDS
        )
        for worker in self.workers:
            worker.join(bound)
            if worker.exitcode is None:
                log.error("worker_killed_after_grace", pid=worker.pid)
                worker.kill()
                worker.join()
