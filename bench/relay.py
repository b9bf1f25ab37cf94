"""A zero-logic TCP relay: the floor of any in-path process's added latency on this VM.

    python -m bench.relay --port P --target-port T [--host 127.0.0.1]

Each accepted connection gets one upstream connection to the target; bytes are copied both
ways unread (no parsing, no buffering beyond the socket's), and when either side closes or
sends EOF both are closed. uvloop sets TCP_NODELAY on both sockets. Every process in the path
of a request costs this VM two wake-ups of an idle vCPU (request in, answer in), so whatever a
gateway adds, a relay on its core adds this much before any gateway code runs: `chat` c=1 and
`stream` TTFB c=1 measure it as the `relay` arm, beside the gateways.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from bench import procs
from bench.targets import Mocks, Target

NAME = "relay"
LABEL = "zero-logic TCP relay (floor)"


class _Side(asyncio.Protocol):
    """One end of a relayed pair: what it reads it writes to its peer, unread."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        #: Bytes read before the peer's connection was up (downstream side only).
        self.pending: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None:
            peer.transport.write(data)
        else:
            self.pending.append(data)

    def eof_received(self) -> bool:
        return False  # the transport closes itself; connection_lost closes the peer

    def connection_lost(self, exc: Exception | None) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()  # flushes what it still has to write first

    # Flow control: a peer that cannot keep up stops this side's reading, not its memory.
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


class _Downstream(_Side):
    """An accepted connection: opens its upstream connection at once."""

    def __init__(self, host: str, target_port: int) -> None:
        super().__init__()
        self.target = (host, target_port)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            up_transport, up = await loop.create_connection(_Side, *self.target)
        except OSError:
            if self.transport is not None:
                self.transport.close()
            return
        if self.transport is None or self.transport.is_closing():
            up_transport.close()  # the client left while we connected
            return
        up.peer, self.peer = self, up
        for data in self.pending:
            up_transport.write(data)
        self.pending.clear()


async def serve(host: str, port: int, target_port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Downstream(host, target_port), host, port, backlog=4096, reuse_address=True
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    import uvloop

    p = argparse.ArgumentParser(prog="python -m bench.relay", description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1", help="listen on, and connect to, this host")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--target-port", type=int, required=True)
    args = p.parse_args(argv)
    uvloop.run(serve(args.host, args.port, args.target_port))


# -- the bench arm --------------------------------------------------------------------------


def spawn(name: str, target_port: int, log_dir: Path | None, timeout: float = 15.0) -> procs.Child:
    """A relay to `target_port`, pinned to the gateway's core, once it accepts connections."""
    return procs.start_forwarder(name, "bench.relay", target_port, log_dir, timeout)


@dataclass
class Arm:
    """One relay per mock a measurement uses: the instant mock (chat, stream TTFB instant)
    and the paced one (stream TTFB paced), so each relays to what `direct` calls there."""

    main: procs.Child
    paced: procs.Child

    def target(self, paced: bool = False) -> Target:
        child = self.paced if paced else self.main
        return Target(NAME, child.port, {}, "mock", "mock")

    def pids(self) -> list[int]:
        return [c.pid for c in (self.main, self.paced) if c.alive()]

    def stop(self) -> None:
        self.main.stop()
        self.paced.stop()

    def info(self) -> dict[str, Any]:
        return {
            "name": NAME,
            "label": LABEL,
            "targets": {"main": self.main.extra["target"], "paced": self.paced.extra["target"]},
        }


def start(mocks: Mocks, log_dir: Path | None, notes: dict[str, str]) -> Arm | None:
    """Both relays up, or a note and None (the floor is a figure, not a target)."""
    started: list[procs.Child] = []
    try:
        for name, mock in (("relay-main", mocks.main), ("relay-paced", mocks.paced)):
            child = spawn(name, mock.port, log_dir)
            child.extra["target"] = mock.name
            started.append(child)
    except (RuntimeError, TimeoutError, OSError) as error:
        notes[NAME] = f"could not start: {str(error)[-600:]}"
        for child in started:
            child.stop()
        return None
    return Arm(*started)


def with_arm(tgts: list[Target], arm: Target | None) -> list[Target]:
    """`tgts` with the relay right after `direct` (its floor column next to the reference)."""
    if arm is None:
        return list(tgts)
    at = next((i + 1 for i, t in enumerate(tgts) if t.name == "direct"), 0)
    return [*tgts[:at], arm, *tgts[at:]]


def method_lines(doc: dict[str, Any]) -> list[str]:
    """RESULTS.md's Method bullet on the relay arm, when it was in the run."""
    if not doc.get("relay_arm"):
        return []
    return [
        f"- *{NAME}*, a {LABEL}: `bench/relay.py` (uvloop, pinned to the gateways' core), one "
        "upstream connection per client connection, bytes copied both ways unread, to the same "
        "mock as *direct* in each measurement. Measured in `chat` c=1 and `stream` TTFB c=1 "
        "(paced and instant) only, interleaved like the others. Why: every process in the path "
        "of a request costs this VM two wake-ups of an idle vCPU, so its added latency is the "
        "floor of any in-path gateway here; what a gateway adds beyond it is its own code "
        "(the `[info]` lines *beyond the relay floor*).",
    ]


if __name__ == "__main__":
    main()
