"""`make soak`: the gateway under a slow backend: a 200-request burst, then thousands more.

    python -m bench.soak [--stub] [--latency-ms 200] [--burst 200] [--batches 6]
                         [--batch-requests 1000] [--concurrency 200] [--max-growth-mb 15]

1. Burst: 200 concurrent chat requests (200 connections, one request each) against a mock that
   answers after `--latency-ms`; every one must get a 200.
2. Soak: `--batches` batches of `--batch-requests` requests at `--concurrency`, alternating
   non-streaming and streaming, while the gateway's RSS is sampled every 0.2 s.

Exits non-zero when any request failed, or when RSS after the last batch exceeds RSS after the
first (warm-up) batch by more than `--max-growth-mb` (default 15 MB: a leak of 3 KB per request
over 5,000 requests). Writes bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench import procs, targets
from bench.plan import log
from bench.run import fresh_work_dir


class RssSampler:
    """Samples a process tree's RSS in a thread until stopped (bounded by `limit_s`)."""

    def __init__(self, pid: int, interval: float = 0.2, limit_s: float = 900) -> None:
        self.pid = pid
        self.interval = interval
        self.limit_s = limit_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set() and time.monotonic() - t0 < self.limit_s:
            self.samples.append((round(time.monotonic() - t0, 2), round(procs.rss_mb(self.pid), 2)))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def burst(target: targets.Target, n: int, timeout: float) -> dict[str, Any]:
    """n connections, one request each, all at once."""
    argv = procs.load_argv(
        target.chat_url,
        json.dumps(targets.chat_body(target.chat_model)),
        concurrency=n,
        duration=timeout,
        warmup=0,
        engine="python",
        extra=["-n", str(n), "--timeout", str(timeout), *target.header_args()],
    )
    return procs.run_json(argv, cpus=procs.CLIENT_CPU, timeout=timeout * 12 + 60)


def batch(
    target: targets.Target, n: int, concurrency: int, stream: bool, timeout: float
) -> dict[str, Any]:
    argv = procs.load_argv(
        target.chat_url,
        json.dumps(targets.chat_body(target.chat_model)),
        concurrency=concurrency,
        duration=30,
        warmup=0,
        engine="python",
        stream=stream,
        extra=["-n", str(n), "--timeout", str(timeout), *target.header_args()],
    )
    return procs.run_json(argv, cpus=procs.CLIENT_CPU, timeout=400)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    p.add_argument("--stub", action="store_true", help="soak bench/stub_gateway.py instead")
    p.add_argument("--latency-ms", type=float, default=200.0)
    p.add_argument("--burst", type=int, default=200)
    p.add_argument("--batches", type=int, default=6)
    p.add_argument("--batch-requests", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=200)
    p.add_argument("--max-growth-mb", type=float, default=15.0)
    p.add_argument("--out", default=str(procs.BENCH / "results" / "soak.json"))
    args = p.parse_args(argv)

    procs.pin_self(procs.CLIENT_CPU)
    work = fresh_work_dir()
    slow = procs.start_mock("mock-slow", latency_ms=args.latency_ms, log_dir=work / "logs")
    gw = targets.llm_backends_gateway(work, slow.url, stub=args.stub, log_level=None)
    result: dict[str, Any] = {"gateway": gw.name, "latency_ms": args.latency_ms}
    failures: list[str] = []
    try:
        if not args.stub and targets.llm_backends_cli() is None:
            raise SystemExit(".venv/bin/llm-backends not found: run `make install`")
        gw.start_until_health(60)
        targets.create_configs(gw, [targets.cfg("bench-slow", "openai", slow.url, timeout=30)])
        target = targets.Target(gw.name, gw.port, {}, "bench-slow", "bench-slow", gw)
        if not targets.chat_ok(gw.port, "bench-slow", {}):
            raise SystemExit(f"{gw.name} does not answer POST {targets.CHAT_PATH} with 200 yet")
        result["rss_start_mb"] = round(procs.rss_mb(gw.pid), 1)

        log(f"burst: {args.burst} concurrent requests, backend latency {args.latency_ms:g} ms")
        b = burst(target, args.burst, timeout=30)
        result["burst"] = b
        log(
            f"burst: {b['ok']}/{args.burst} ok, errors {b['errors']}, "
            f"p50 {b['p50_ms']} ms, max {b['max_ms']} ms"
        )
        if b["ok"] != args.burst or b["errors"]:
            failures.append(f"burst: {b['ok']}/{args.burst} ok, {b['error_detail']}")

        batches: list[dict[str, Any]] = []
        with RssSampler(gw.pid) as sampler:
            for i in range(args.batches):
                stream = i % 2 == 1
                r = batch(target, args.batch_requests, args.concurrency, stream, timeout=30)
                r["stream"] = stream
                r["rss_after_mb"] = round(procs.rss_mb(gw.pid), 1)
                batches.append(r)
                log(
                    f"batch {i + 1}/{args.batches} ({'stream' if stream else 'json'}): "
                    f"{r['ok']}/{args.batch_requests} ok, errors {r['errors']}, "
                    f"{r['rps']} req/s, RSS {r['rss_after_mb']} MB"
                )
                if r["ok"] != args.batch_requests or r["errors"]:
                    failures.append(
                        f"batch {i + 1}: {r['ok']}/{args.batch_requests} ok, {r['error_detail']}"
                    )
        result["batches"] = batches
        rss = [s[1] for s in sampler.samples]
        result["rss_samples_mb"] = sampler.samples
        result["rss_peak_mb"] = round(max(rss), 1) if rss else None
        result["rss_median_mb"] = round(statistics.median(rss), 1) if rss else None
        result["peak_rss_vmhwm_mb"] = round(procs.peak_rss_mb(gw.pid), 1)
        warm = batches[0]["rss_after_mb"] if batches else result["rss_start_mb"]
        end = batches[-1]["rss_after_mb"] if batches else result["rss_start_mb"]
        result["rss_after_first_batch_mb"] = warm
        result["rss_end_mb"] = end
        result["rss_growth_mb"] = round(end - warm, 1)
        result["max_growth_mb"] = args.max_growth_mb
        if end - warm > args.max_growth_mb:
            failures.append(
                f"RSS grew {end - warm:.1f} MB after warm-up (bound {args.max_growth_mb} MB)"
            )
    finally:
        gw.stop()
        slow.stop()
    result["failures"] = failures
    result["requests"] = args.burst + args.batches * args.batch_requests
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    log(
        f"RSS start {result.get('rss_start_mb')} MB, after warm-up "
        f"{result.get('rss_after_first_batch_mb')} MB, end {result.get('rss_end_mb')} MB, "
        f"peak {result.get('peak_rss_vmhwm_mb')} MB; {result['requests']} requests"
    )
    if failures:
        for f in failures:
            log(f"FAIL {f}")
        return 1
    log(f"soak passed; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
