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

from bench import procs, targets

#: Layers by the file path of a frame, first match wins (py-spy prints `func (path:line)`).
LAYERS: tuple[tuple[str, str], ...] = (
    ("llm_backends/gateway", "llm_backends.gateway"),
    ("llm_backends/router/backends", "llm_backends.router.backends"),
    ("llm_backends/router/transport", "llm_backends.router.transport"),
    ("llm_backends/router", "llm_backends.router"),
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


def summarize(collapsed: Path, top: int) -> dict[str, object]:
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
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy not found: pip install py-spy", file=sys.stderr)
        return 2
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
        if args.api == "openai":
            url = f"http://127.0.0.1:{gw.port}{targets.CHAT_PATH}"
            body = targets.chat_body("bench-openai", stream=args.stream)
        else:
            url = f"http://127.0.0.1:{gw.port}{targets.OLLAMA_CHAT_PATH}"
            body = targets.ollama_chat_body("bench-ollama")
            body["stream"] = args.stream
        load_argv = [
            procs.PYTHON,
            "-m",
            "bench.load",
            "--url",
            url,
            "-c",
            str(args.concurrency),
            "-d",
            str(args.duration),
            "--warmup",
            "1",
            "--body",
            json.dumps(body),
            "--engine",
            "python" if args.stream else "auto",
        ]
        if args.stream:
            load_argv.append("--stream")
        load = subprocess.Popen(
            procs.pin_prefix(procs.CLIENT_CPU) + load_argv, stdout=subprocess.PIPE, text=True
        )
        collapsed = Path(args.out) if args.out else work / "collapsed.txt"
        subprocess.run(
            [
                spy,
                "record",
                "--pid",
                str(gw.pid),
                "--format",
                "raw",
                "--nonblocking",
                "--rate",
                str(args.rate),
                "--duration",
                str(int(args.duration)),
                "-o",
                str(collapsed),
            ],
            check=True,
            capture_output=True,
        )
        out, _ = load.communicate(timeout=args.duration + 60)
        result = json.loads(out.strip().splitlines()[-1])
        summary = summarize(collapsed, args.top)
        summary["load"] = {k: result.get(k) for k in ("rps", "p50_ms", "p99_ms", "errors")}
    finally:
        gw.stop()
        mock.stop()
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"load: {summary['load']}  samples: {summary['samples']}")
    print("self time by layer (%):")
    for name, share in summary["layers"].items():  # type: ignore[union-attr]
        print(f"  {share:5.1f}  {name}")
    print("functions with the most self time (%):")
    for name, share in summary["functions"]:  # type: ignore[union-attr]
        print(f"  {share:5.1f}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
