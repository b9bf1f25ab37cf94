"""The fault table of the backend-fault suite, what each fault must lead to, and the probes
that check a fault left nothing behind (descriptors, tasks, connections, tracebacks).

Timing is never asserted on measured durations: every config has `timeout_seconds=1`, and
the caller's own bound (`bounded`, timeout + margin) fails the test if it fires first.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from llm_backends.router.errors import (
    BackendTimeout,
    BackendUnavailable,
    InvalidBackendResponse,
    LLMRouterError,
    ModelNotFound,
    StreamInterrupted,
)
from llm_backends.router.stats import ModelStats

#: `timeout_seconds` of every config in this suite.
TIMEOUT = 1
#: How much later than the timeout an outcome may arrive (scheduling, a fallback's answer).
MARGIN = 2
#: The callers' bound: an outcome not there by then fails the test.
BOUND = TIMEOUT + MARGIN
#: `max_backend_response_bytes` of the routers under test.
LIMIT = 64 * 1024
#: What the `huge_body` fault sends: 16 times the limit (a real default would be 32 MiB).
HUGE = 16 * LIMIT
#: The fakes' default answer.
REPLY = "Hello from the fake server."
MESSAGES = [{"role": "user", "content": "hi"}]

#: Backend types of the matrix: `auto` is MLX (a faulty OpenAI-protocol fake) then Ollama.
BACKENDS = ("ollama", "openai", "auto")

Server = Literal["fake", "refused", "silent"]


@dataclass(frozen=True)
class Fault:
    """One way a backend misbehaves, and the typed error it must turn into."""

    name: str
    #: "fake": the backend's Starlette fake with `knobs` set; "refused": nothing listens;
    #: "silent": a raw TCP server that accepts and never answers.
    server: Server
    knobs: dict[str, Any]
    #: The error when nothing reached the caller yet (whole answers; streams, unless mid_stream).
    error: type[LLMRouterError]
    #: A regex the error's reason must match.
    reason: str
    #: Streams: the failure comes after the first chunk (so no fallback, an error event).
    mid_stream: bool = False
    #: The reason in streams, when it differs.
    stream_reason: str | None = None

    def __str__(self) -> str:
        return self.name


NO_ANSWER = rf"no answer within {TIMEOUT}s"

FAULTS = [
    Fault("refused", "refused", {}, BackendUnavailable, "cannot reach backend"),
    Fault("accept_never_answer", "silent", {}, BackendTimeout, NO_ANSWER),
    Fault("headers_then_stall", "fake", {"stall_headers": 30}, BackendTimeout, NO_ANSWER),
    Fault("http_500", "fake", {"status": 500, "error": "GPU on fire"}, BackendUnavailable,
          "HTTP 500: GPU on fire"),
    Fault("http_503_retry_after", "fake",
          {"status": 503, "error": "overloaded", "retry_after": "120"}, BackendUnavailable,
          "HTTP 503: overloaded"),
    Fault("http_404", "fake", {"status": 404, "error": "model 'x' not found"}, ModelNotFound,
          "HTTP 404: model 'x' not found"),
    Fault("invalid_json", "fake", {"garbage": True}, InvalidBackendResponse, "invalid JSON"),
    Fault("missing_fields", "fake", {"missing_fields": True}, InvalidBackendResponse,
          "lacks|without choices"),
    Fault("body_cut", "fake", {"cut_after": 1}, InvalidBackendResponse, "invalid JSON",
          mid_stream=True, stream_reason="stream ended before"),
    Fault("connection_dropped", "fake", {"drop_after": 1}, InvalidBackendResponse,
          "response body cut", mid_stream=True),
    Fault("stall_mid_body", "fake", {"stall": 30, "chunks": 3}, BackendTimeout, NO_ANSWER,
          mid_stream=True),
    Fault("huge_body", "fake", {"huge": HUGE}, InvalidBackendResponse,
          rf"larger than {LIMIT} bytes \(max_backend_response_bytes\)"),
]  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """What a caller must see for one (fault, backend type, stream) cell."""

    #: None: the answer arrives (from the fallback Ollama, for `auto`).
    error: type[LLMRouterError] | None
    reason: str = ""
    #: The backend named by the error (or that failed first, for a fallback).
    backend: str = ""
    #: Chunks were delivered before the error (a stream interrupted mid-way).
    mid_stream: bool = False
    #: The Retry-After the error carries (and a gateway passes on): the backend's own.
    retry_after: str | None = None

    @property
    def fallback(self) -> bool:
        return self.error is None


def faulty_kind(backend: str) -> str:
    """The wire protocol of the faulty server: `auto` tries MLX first."""
    return "mlx" if backend == "auto" else backend


def expected(fault: Fault, backend: str, stream: bool) -> Outcome:
    kind = faulty_kind(backend)
    if stream and fault.mid_stream:
        reason = fault.stream_reason or fault.reason
        return Outcome(StreamInterrupted, reason, kind, mid_stream=True)
    if backend == "auto":
        return Outcome(None, backend=kind)  # MLX failed before any byte: Ollama answers
    return Outcome(fault.error, fault.reason, kind, retry_after=fault.knobs.get("retry_after"))


def stats_of(router: Any, model: str) -> ModelStats:
    """The router's not yet reported counts of `model`."""
    return next((s for s in router.pending_stats() if s.model_name == model), ModelStats(model))


# -- bounds ---------------------------------------------------------------------------------


@asynccontextmanager
async def bounded(what: str, seconds: float = BOUND) -> AsyncIterator[None]:
    """Fail the test if the block takes longer than the timeout plus the margin."""
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        pytest.fail(f"{what}: no outcome within {seconds}s (timeout {TIMEOUT}s + margin)")


# -- leak probes ----------------------------------------------------------------------------


def open_fds() -> dict[int, str]:
    """This process's descriptors and what each is (a path, `socket:[inode]`, `pipe:[...]`)."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            found[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:  # closed since the listing (the listing's own descriptor, typically)
            continue
    return found


#: /proc/net/tcp's connection states by code (the ones a leak shows).
TCP_STATES = {"01": "ESTABLISHED", "02": "SYN_SENT", "06": "TIME_WAIT", "08": "CLOSE_WAIT",
              "04": "FIN_WAIT1", "05": "FIN_WAIT2", "09": "LAST_ACK", "0A": "LISTEN"}  # fmt: skip


@dataclass(frozen=True)
class TcpSocket:
    local_port: int
    remote_port: int
    state: str
    inode: str

    def __str__(self) -> str:  # ports only: everything here is on loopback
        state = TCP_STATES.get(self.state, self.state)
        return f"tcp :{self.local_port} -> :{self.remote_port} {state}"


def tcp_sockets() -> Iterator[TcpSocket]:
    """Every TCP socket of this network namespace, from /proc/net/tcp and tcp6."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as lines:
                next(lines)
                for line in lines:
                    # "sl local_address rem_address st ... inode ...", addresses as HEXIP:HEXPORT
                    fields = line.split()
                    local, remote = int(fields[1][-4:], 16), int(fields[2][-4:], 16)
                    yield TcpSocket(local, remote, fields[3], fields[9])
        except FileNotFoundError:
            continue


def established_to(ports: list[int]) -> dict[int, int]:
    """Client-side ESTABLISHED TCP connections to each of `ports` (from any loopback peer)."""
    counts = dict.fromkeys(ports, 0)
    for sock in tcp_sockets():
        if sock.remote_port in counts and sock.state == "01":
            counts[sock.remote_port] += 1
    return counts


def described_sockets() -> dict[str, str]:
    """`socket:[inode]` (a descriptor's link) -> what the socket is."""
    with open("/proc/net/unix") as lines:
        next(lines)  # an event loop's self-pipe, typically
        described = {f"socket:[{line.split()[6]}]": "unix socket" for line in lines}
    described.update((f"socket:[{sock.inode}]", str(sock)) for sock in tcp_sockets())
    return described


def port_of(url: str) -> int:
    match = re.search(r":(\d+)(?:/|$)", url)
    assert match, url
    return int(match.group(1))


def acquired_connections(router: Any) -> int:
    """Connections the router's pool has handed out and not got back (0 when idle)."""
    scope = router._scope
    if scope is None or scope.closed:
        return 0
    return int(scope.client.in_use)


@dataclass(frozen=True)
class Snapshot:
    #: descriptor -> what it is (see `open_fds`)
    fds: dict[int, str]
    tasks: int
    connections: dict[int, int]
    acquired: int

    def excess_over(self, baseline: Snapshot) -> list[str]:
        """What is above the baseline (an empty list: nothing leaked)."""
        excess = []
        if len(self.fds) > len(baseline.fds):
            excess.append(f"file descriptors {len(baseline.fds)} -> {len(self.fds)} "
                          f"(new: {self.new_fds(baseline)})")  # fmt: skip
        if self.tasks > baseline.tasks:
            excess.append(f"asyncio tasks {baseline.tasks} -> {self.tasks}")
        for port, count in self.connections.items():
            if count > baseline.connections.get(port, 0):
                was = baseline.connections.get(port, 0)
                excess.append(f"connections to :{port} {was} -> {count}")
        if self.acquired:
            excess.append(f"{self.acquired} pool connection(s) never released")
        return excess

    def new_fds(self, baseline: Snapshot) -> str:
        """The descriptors that were not open at the baseline, sockets named by their ports."""
        named = described_sockets()
        new = [t for fd, t in sorted(self.fds.items()) if baseline.fds.get(fd) != t]
        return ", ".join(named.get(target, target) for target in new) or "none by number"


@dataclass
class Probe:
    """Counts what a fault could leak: `await probe.snapshot()`; `await probe.settled(base)`."""

    count_tasks: Callable[[], Awaitable[int]]
    router: Callable[[], Any]
    ports: list[int] = field(default_factory=list)

    async def snapshot(self) -> Snapshot:
        return Snapshot(
            fds=open_fds(),
            tasks=await self.count_tasks(),
            connections=established_to(self.ports),
            acquired=acquired_connections(self.router()),
        )

    async def settled(self, baseline: Snapshot, seconds: float = 5.0) -> None:
        """Poll (bounded) until nothing is above the baseline; fail naming what stayed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            excess = (await self.snapshot()).excess_over(baseline)
            if not excess:
                return
            if loop.time() >= deadline:
                pytest.fail("leaked after the fault: " + "; ".join(excess))
            await asyncio.sleep(0.02)


async def tasks_in_this_loop() -> int:
    """Tasks of the running loop, not counting the caller's."""
    return len(asyncio.all_tasks()) - 1


def tasks_in(loop: asyncio.AbstractEventLoop) -> Callable[[], Awaitable[int]]:
    """A counter of the tasks of another thread's loop (counted inside that loop)."""

    async def count() -> int:
        return await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(tasks_in_this_loop(), loop)
        )

    return count


# -- tracebacks -----------------------------------------------------------------------------


class AppLogRecords(logging.Handler):
    """Keeps the stdlib log records that count as the app's failures: ERROR and above, or
    any record carrying a traceback, logged in one of the app's threads (the fakes log their
    deliberate drops from their own threads), plus every asyncio-loop error ("Unclosed
    connection", "Task exception was never retrieved", ...) from any thread."""

    def __init__(self, threads: set[int]) -> None:
        super().__init__(logging.DEBUG)
        self.threads = threads
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        failing = record.levelno >= logging.ERROR or record.exc_info
        if failing and (record.thread in self.threads or record.name.startswith("asyncio")):
            self.records.append(record)


@dataclass
class AppLogs:
    """What the app logged during a test: stdlib records and structlog events."""

    handler: AppLogRecords
    events: list[dict[str, Any]]

    def tracebacks(self) -> list[str]:
        found = [
            f"{record.name}: {record.getMessage()}"
            + (f" ({record.exc_info[1]!r})" if record.exc_info else "")
            for record in self.handler.records
        ]
        for event in self.events:
            if (
                event.get("exc_info")
                or event.get("exception")
                or (event.get("log_level") in ("error", "critical", "exception"))
            ):
                found.append(f"structlog: {event}")
        return found


def app_threads(*extra: int | None) -> set[int]:
    return {threading.main_thread().ident or 0, *(ident for ident in extra if ident)}
