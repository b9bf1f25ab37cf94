"""Closed-loop HTTP load generator, run as its own process; prints one JSON object on stdout.

Two engines, same JSON shape:

* `wrk` (Debian's wrk 4, one thread, a Lua script): for non-streaming throughput and latency.
  It costs ~10 µs of CPU per request, so on the core it shares with the mock it leaves nearly all
  of that core free; its latencies are µs-resolution.
* `python`: raw asyncio Protocol + httptools on uvloop, ~30 µs per request. It is the one that
  sees *time to first byte* of a streamed body (wrk only sees whole responses), and the fallback
  where wrk is missing. aiohttp's client was not used: at ~150 µs per request it would itself be
  the bottleneck at the rates measured here (see `bench/httpclient_compare.py`).

    python -m bench.load --url http://127.0.0.1:9000/v1/chat/completions -c 32 -d 5 \\
        [--body JSON] [--header 'Authorization: Bearer x'] [--stream] [--engine wrk|python]

Output: {"rps", "requests", "errors", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "ttfb_p50_ms", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httptools

LUA_SCRIPT = Path(__file__).with_name("lua") / "post_json.lua"
DEFAULT_BODY = '{"model":"mock","messages":[{"role":"user","content":"hi"}],"max_tokens":16}'


def percentile(sorted_values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of an already sorted list (None when empty)."""
    if not sorted_values:
        return None
    rank = math.ceil(pct / 100 * len(sorted_values))
    return sorted_values[max(0, min(len(sorted_values), rank) - 1)]


@dataclass(slots=True)
class Tally:
    """What one run saw. Latencies in ns, recorded only after warm-up."""

    latencies: list[int] = field(default_factory=list)
    ttfbs: list[int] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    conn_errors: int = 0
    timeouts: int = 0
    recording: bool = False
    started_ns: int = 0
    stopped_ns: int = 0


class Client(asyncio.Protocol):
    """One keep-alive connection that sends the next request as soon as the last one completes."""

    def __init__(self, gen: LoadGen) -> None:
        self.gen = gen
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.t0 = 0
        self.ttfb = 0
        self.busy = False
        self.keep_alive = True
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.send()

    def send(self) -> None:
        gen = self.gen
        if gen.stopping or (gen.max_requests and gen.sent >= gen.max_requests):
            gen.idle(self)
            return
        gen.sent += 1
        self.busy = True
        self.ttfb = 0
        self.t0 = time.perf_counter_ns()
        assert self.transport is not None
        self.transport.write(gen.request)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.gen.tally.conn_errors += 1
            self.busy = False
            if self.transport is not None:
                self.transport.close()

    def on_headers_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        if not self.ttfb and body.strip():
            self.ttfb = time.perf_counter_ns()

    def on_message_complete(self) -> None:
        now = time.perf_counter_ns()
        self.busy = False
        gen = self.gen
        tally = gen.tally
        if tally.recording:
            status = self.parser.get_status_code()
            tally.statuses[status] = tally.statuses.get(status, 0) + 1
            tally.latencies.append(now - self.t0)
            if self.ttfb:
                tally.ttfbs.append(self.ttfb - self.t0)
        gen.done += 1
        if not self.keep_alive:
            assert self.transport is not None
            self.transport.close()
            return
        self.send()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.busy and self.gen.tally.recording:
            self.gen.tally.conn_errors += 1
        self.busy = False
        if not self.lost.done():
            self.lost.set_result(None)


class LoadGen:
    """`concurrency` connections in a closed loop for `duration` seconds or `max_requests`."""

    def __init__(
        self,
        url: str,
        body: bytes,
        headers: list[str],
        concurrency: int,
        duration: float,
        max_requests: int,
        warmup: float,
        timeout: float,
    ) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = [
            f"POST {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
            *headers,
        ]
        self.request = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        self.concurrency = concurrency
        self.duration = duration
        self.max_requests = max_requests
        self.warmup = warmup
        self.timeout = timeout
        self.tally = Tally()
        self.sent = 0
        self.done = 0
        self.stopping = False
        self.clients: list[Client] = []
        self.all_idle: asyncio.Future[None] | None = None
        self.idle_count = 0

    def idle(self, client: Client) -> None:
        self.idle_count += 1
        if self.idle_count >= self.concurrency and self.all_idle and not self.all_idle.done():
            self.all_idle.set_result(None)

    async def _connect_one(self) -> Client:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(lambda: Client(self), self.host, self.port)
        return proto

    async def run(self) -> Tally:
        loop = asyncio.get_running_loop()
        self.all_idle = loop.create_future()
        if self.warmup > 0:
            warm_deadline = time.monotonic() + self.warmup
        else:
            warm_deadline = 0.0
            self._start_recording()
        self.clients = list(
            await asyncio.gather(*(self._connect_one() for _ in range(self.concurrency)))
        )
        if warm_deadline:
            await asyncio.sleep(max(0.0, warm_deadline - time.monotonic()))
            self._start_recording()
        # Bounded in time even with a request budget: the budget run may not outlive 10x duration.
        limit = self.duration if not self.max_requests else max(self.duration, 1.0) * 10
        end = time.monotonic() + limit
        while time.monotonic() < end and not self.all_idle.done():
            await asyncio.wait([self.all_idle], timeout=min(0.1, max(0.0, end - time.monotonic())))
            self._reap_timeouts()
        self.stopping = True
        self.tally.stopped_ns = time.perf_counter_ns()
        self.tally.recording = False
        for client in self.clients:
            if client.transport is not None:
                client.transport.close()
        return self.tally

    def _start_recording(self) -> None:
        self.tally.recording = True
        self.tally.started_ns = time.perf_counter_ns()
        self.sent = 0

    def _reap_timeouts(self) -> None:
        now = time.perf_counter_ns()
        limit_ns = int(self.timeout * 1e9)
        for client in self.clients:
            if client.busy and now - client.t0 > limit_ns:
                client.busy = False
                self.tally.timeouts += 1
                if client.transport is not None:
                    client.transport.close()
                asyncio.get_running_loop().create_task(self._replace(client))

    async def _replace(self, dead: Client) -> None:
        try:
            new = await self._connect_one()
        except OSError:
            self.tally.conn_errors += 1
            self.idle(dead)
            return
        self.clients[self.clients.index(dead)] = new


def summarize(tally: Tally, engine: str, concurrency: int) -> dict[str, Any]:
    lat = sorted(tally.latencies)
    ttfb = sorted(tally.ttfbs)
    elapsed = max(1, tally.stopped_ns - tally.started_ns) / 1e9
    ok = sum(n for s, n in tally.statuses.items() if 200 <= s < 300)
    bad = sum(n for s, n in tally.statuses.items() if not 200 <= s < 300)

    def ms(v: float | None) -> float | None:
        return None if v is None else round(v / 1e6, 4)

    return {
        "engine": engine,
        "concurrency": concurrency,
        "duration_s": round(elapsed, 3),
        "requests": len(lat),
        "ok": ok,
        "errors": bad + tally.conn_errors + tally.timeouts,
        "error_detail": {"status": bad, "connection": tally.conn_errors, "timeout": tally.timeouts},
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "rps": round(ok / elapsed, 1),
        "mean_ms": ms(sum(lat) / len(lat)) if lat else None,
        "p50_ms": ms(percentile(lat, 50)),
        "p90_ms": ms(percentile(lat, 90)),
        "p99_ms": ms(percentile(lat, 99)),
        "max_ms": ms(lat[-1]) if lat else None,
        "ttfb_p50_ms": ms(percentile(ttfb, 50)),
        "ttfb_p99_ms": ms(percentile(ttfb, 99)),
    }


def run_python(args: argparse.Namespace, body: bytes) -> dict[str, Any]:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    gen = LoadGen(
        args.url,
        body,
        args.header,
        args.concurrency,
        args.duration,
        args.requests,
        args.warmup,
        args.timeout,
    )
    tally = asyncio.run(gen.run())
    return summarize(tally, "python", args.concurrency)


def run_wrk(args: argparse.Namespace, body: bytes) -> dict[str, Any]:
    """wrk -t1 with the Lua script; warm-up is a separate short wrk run (wrk has none)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk not found: run bench/setup.sh or use --engine python")
    env = dict(os.environ, WRK_BODY=body.decode())
    extra: list[str] = []
    for h in args.header:
        name, _, value = h.partition(":")
        if name.strip().lower() == "authorization" and value.strip().lower().startswith("bearer "):
            env["WRK_AUTH"] = value.strip()[7:]
        else:
            extra += ["-H", h]
    base = [
        wrk,
        "-t1",
        f"-c{args.concurrency}",
        f"--timeout={max(1, int(args.timeout))}s",
        "-s",
        str(LUA_SCRIPT),
        *extra,
        args.url,
    ]
    if args.warmup > 0:
        subprocess.run(
            [*base[:3], f"-d{max(1, round(args.warmup))}s", *base[3:]],
            env=env,
            capture_output=True,
            timeout=args.warmup + 30,
            check=False,
        )
    duration = max(1, round(args.duration))
    out = subprocess.run(
        [*base[:3], f"-d{duration}s", *base[3:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=duration + 30,
        check=False,
    )
    line = next((ln for ln in reversed(out.stdout.splitlines()) if ln.startswith("{")), None)
    if line is None:
        raise SystemExit(f"wrk gave no summary: {out.stdout[-500:]} {out.stderr[-500:]}")
    raw = json.loads(line)
    lat = raw["latency_us"]
    err = raw["errors"]
    elapsed = raw["duration_us"] / 1e6
    errors = sum(err.values())
    ok = raw["requests"] - err["status"]
    return {
        "engine": "wrk",
        "concurrency": args.concurrency,
        "duration_s": round(elapsed, 3),
        "requests": raw["requests"],
        "ok": ok,
        "errors": errors,
        "error_detail": err,
        "rps": round(ok / elapsed, 1),
        "mean_ms": round(lat["mean"] / 1000, 4),
        "p50_ms": lat["p50"] / 1000,
        "p90_ms": lat["p90"] / 1000,
        "p99_ms": lat["p99"] / 1000,
        "max_ms": lat["max"] / 1000,
        "ttfb_p50_ms": None,
        "ttfb_p99_ms": None,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n")[0])
    p.add_argument("--url", required=True)
    p.add_argument("-c", "--concurrency", type=int, default=1)
    p.add_argument("-d", "--duration", type=float, default=5.0, help="seconds of measurement")
    p.add_argument("-n", "--requests", type=int, default=0, help="stop after N (python engine)")
    p.add_argument("--warmup", type=float, default=0.5, help="seconds before measuring")
    p.add_argument("--timeout", type=float, default=10.0, help="per-request timeout, seconds")
    p.add_argument("--body", default=DEFAULT_BODY, help="JSON body to POST")
    p.add_argument("--header", action="append", default=[], help="'Name: value' (repeatable)")
    p.add_argument("--stream", action="store_true", help="add stream:true; measure TTFB")
    p.add_argument(
        "--engine",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="auto: wrk for non-streaming when installed, else python",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    body_obj = json.loads(args.body)
    if args.stream:
        body_obj["stream"] = True
    body = json.dumps(body_obj, separators=(",", ":")).encode()
    engine = args.engine
    if engine == "auto":
        engine = (
            "wrk" if shutil.which("wrk") and not args.stream and not args.requests else "python"
        )
    result = run_wrk(args, body) if engine == "wrk" else run_python(args, body)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
