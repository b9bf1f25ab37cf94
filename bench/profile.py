"""Where the gateway's CPU goes: py-spy samples `llm-backends serve` under load.

    python -m bench.profile [--api openai|ollama] [--stream] [-c 32] [-d 8] [--top 25]

Starts the instant mock (core 1) and one gateway (core 0), as `make bench` does, drives one
closed-loop load at it from core 1 while `py-spy record --nonblocking` samples the gateway,
then prints a summary of the collapsed stacks: the share of samples by layer (uvicorn,
starlette, aiohttp, the event loop, llm_backends' own modules, logging, metrics) and the
functions with the most self time. `--out` keeps the raw collapsed stacks (flamegraph input).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from bench import procs, targets

#: Layers by the file path of a frame, first match wins (py-spy prints `func (path:line)`).
LAYERS: tuple[tuple[str, str], ...] = (
    ("llm_backends/gateway", "llm_backends.gateway"),
    ("llm_backends/router/backends", "llm_backends.router.backends"),
    ("llm_backends/router/transport", "llm_backends.router.transport"),
    ("llm_backends/router", "llm_backends.router"),
    ("llm_backends/serving", "llm_backends.serving (HTTP protocol)"),
    ("llm_backends", "llm_backends (other)"),
    ("uvicorn", "uvicorn"),
    ("granian", "granian"),
    ("starlette", "starlette"),
    ("fastapi", "fastapi"),
    ("aiohttp", "aiohttp"),
    ("structlog", "structlog"),
    ("logging", "logging"),
    ("prometheus_client", "prometheus_client"),
    ("pydantic", "pydantic"),
    ("asyncio", "asyncio / uvloop"),
    ("uvloop", "asyncio / uvloop"),
)


def layer_of(frame: str) -> str:
    for needle, name in LAYERS:
        if needle in frame:
            return name
    return "other"


def summarize(collapsed: Path, top: int) -> dict[str, Any]:
    """Self time by layer and by function (the leaf frame of each sample)."""
    total = 0
    by_layer: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        leaf = frames[-1]
        total += count
        by_function[leaf] += count
        # Attribute the sample to the innermost frame that belongs to a known layer: a C
        # call (no Python frame of its own) counts for the Python code that made it.
        for frame in reversed(frames):
            layer = layer_of(frame)
            if layer != "other":
                by_layer[layer] += count
                break
        else:
            by_layer["other"] += count
    return {
        "samples": total,
        "layers": {k: round(100 * v / total, 1) for k, v in by_layer.most_common()},
        "functions": [(k, round(100 * v / total, 1)) for k, v in by_function.most_common(top)],
    }


def record(
    pid: int,
    url: str,
    body: dict[str, Any],
    *,
    stream: bool,
    concurrency: int = 32,
    duration: float = 6.0,
    rate: int = 997,
    top: int = 25,
    collapsed: Path | None = None,
) -> dict[str, Any]:
    """Load the gateway `pid` at `url` from the client core while py-spy samples it; the
    summary (`summarize`) plus the load's own figures. Raises when py-spy is missing."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise FileNotFoundError("py-spy not found: pip install py-spy")
    load_argv = procs.load_argv(
        url,
        json.dumps(body),
        concurrency=concurrency,
        duration=duration,
        warmup=1,
        engine="python" if stream else "auto",
        stream=stream,
    )
    load = subprocess.Popen(
        procs.pin_prefix(procs.CLIENT_CPU) + load_argv, stdout=subprocess.PIPE, text=True
    )
    out_file = collapsed or Path(tempfile.mkdtemp(prefix="llmb-profile-")) / "collapsed.txt"
    spy_argv = [spy, "record", "--pid", str(pid), "--format", "raw", "--nonblocking"]
    spy_argv += ["--rate", str(rate), "--duration", str(int(duration)), "-o", str(out_file)]
    subprocess.run(spy_argv, check=True, capture_output=True)
    out, _ = load.communicate(timeout=duration + 60)
    result = json.loads(out.strip().splitlines()[-1])
    summary = summarize(out_file, top)
    summary["load"] = {k: result.get(k) for k in ("rps", "p50_ms", "p99_ms", "errors")}
    return summary


def request_of(port: int, api: str, stream: bool) -> tuple[str, dict[str, Any]]:
    """The URL and body of the profiled load (the bench's own chat bodies)."""
    if api == "openai":
        return f"http://127.0.0.1:{port}{targets.CHAT_PATH}", targets.chat_body(
            "bench-openai", stream=stream
        )
    body = targets.ollama_chat_body("bench-ollama")
    body["stream"] = stream
    return f"http://127.0.0.1:{port}{targets.OLLAMA_CHAT_PATH}", body


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n")[0])
    p.add_argument("--api", choices=("openai", "ollama"), default="openai")
    p.add_argument("--stream", action="store_true")
    p.add_argument("-c", "--concurrency", type=int, default=32)
    p.add_argument("-d", "--duration", type=float, default=8.0)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--rate", type=int, default=997, help="py-spy samples per second")
    p.add_argument("--out", help="keep the collapsed stacks here")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="llmb-profile-"))
    mock = procs.start_mock("mock-main", log_dir=work)
    gw = targets.llm_backends_gateway(work, mock.url, stub=False, log_level=None)
    try:
        gw.start_until_health(60)
        targets.create_configs(
            gw,
            [
                targets.cfg("bench-openai", "openai", mock.url),
                targets.cfg("bench-ollama", "ollama", mock.url),
            ],
        )
        url, body = request_of(gw.port, args.api, args.stream)
        summary = record(
            gw.pid,
            url,
            body,
            stream=args.stream,
            concurrency=args.concurrency,
            duration=args.duration,
            rate=args.rate,
            top=args.top,
            collapsed=Path(args.out) if args.out else None,
        )
    finally:
        gw.stop()
        mock.stop()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"load: {summary['load']}  samples: {summary['samples']}")
    print("self time by layer (%):")
    for name, share in summary["layers"].items():
        print(f"  {share:5.1f}  {name}")
    print("functions with the most self time (%):")
    for name, share in summary["functions"]:
        print(f"  {share:5.1f}  {name}")
    return 0


def scenario_profile(port: int, pid: int, duration: float) -> dict[str, Any]:
    """`make bench`'s profile scenario: chat and streams at 32 clients, on the running
    gateway (configs bench-openai / bench-ollama exist there)."""
    out: dict[str, Any] = {}
    for name, api, stream in (("chat", "openai", False), ("stream", "openai", True)):
        url, body = request_of(port, api, stream)
        out[name] = record(pid, url, body, stream=stream, duration=duration, top=12)
    return out


if __name__ == "__main__":
    raise SystemExit(main())
