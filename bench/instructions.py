"""The library's cost per call in instructions (callgrind): the figure the VM's noise can't move.

    python -m bench.instructions [--backend openai|ollama] [--calls 1000] [--json-out FILE]

CPU time per call on this VM moves by ±20 µs from run to run (vCPU steal, frequency, cache
state), as much as the router's own work, so `bench.library_bench`'s µs can't show a change of
a few µs. Instructions executed are the same in every run. Each arm runs in its own process under
`valgrind --tool=callgrind --instr-atstart=no`, counted only around its measured calls (after
warm-up; `callgrind_control -i on/off`, the child and this process in step over a pipe):

- `pool`: the raw call on the router's own pool (`library_bench.pool_call`);
- `router`: `router.generate()` with the default INFO JSON line per call;
- `router-warning`: the same at LOG_LEVEL=WARNING (no line).

The mock runs outside valgrind. User-space instructions only: the syscalls' kernel time is in
neither arm's count, so "router - pool" is the router's own Python work.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import procs

ARMS = ("pool", "router", "router-warning")
MODEL = "bench-instructions"


def totals(callgrind_out: Path) -> int:
    """The `totals:` line of a callgrind output file (instructions, with `--dump-instr=no`)."""
    for line in reversed(callgrind_out.read_text().splitlines()):
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise ValueError(f"no totals line in {callgrind_out}")


def per_call(counts: dict[str, int], calls: int) -> dict[str, Any]:
    """Instructions per call for each arm, and the router's beyond the pool call."""
    out: dict[str, Any] = {arm: round(count / calls) for arm, count in counts.items()}
    if "pool" in counts:
        for arm in ("router", "router-warning"):
            if arm in counts:
                out[f"{arm}_beyond_pool"] = round((counts[arm] - counts["pool"]) / calls)
    return out


def measure_arm(arm: str, backend: str, mock_url: str, calls: int, workdir: Path) -> int:
    """Run one arm under callgrind; its instructions over `calls` calls."""
    out_file = workdir / f"callgrind.{arm}.out"
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out_file}",
        procs.PYTHON,
        "-m",
        "bench.instructions",
        "--child",
        arm,
        "--backend",
        backend,
        "--mock-url",
        mock_url,
        "--calls",
        str(calls),
    ]
    child = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=procs.child_env(None),
        cwd=procs.ROOT,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        for expected, command in (("warm", "on"), ("done", "off")):
            line = child.stdout.readline().strip()
            if line != expected:
                raise RuntimeError(f"{arm}: expected {expected!r} from the child, got {line!r}")
            subprocess.run(
                ["callgrind_control", "-i", command, str(child.pid)],
                check=True,
                capture_output=True,
            )
            child.stdin.write("go\n")
            child.stdin.flush()
        if child.wait(timeout=600) != 0:
            raise RuntimeError(f"{arm}: the child exited with {child.returncode}")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return totals(out_file)


def run_child(arm: str, backend: str, mock_url: str, calls: int) -> None:
    """Warm up, say "warm", wait for "go", make `calls` calls, say "done", wait for "go"."""
    from bench import library_bench
    from llm_backends.logs import configure_logging
    from llm_backends.router.transport import HttpPool

    level = "WARNING" if arm == "router-warning" else "INFO"
    configure_logging(level, json=True, stdlib=False, stream=open(os.devnull, "wb"))

    def step(word: str) -> None:
        print(word, flush=True)
        if sys.stdin.readline().strip() != "go":
            raise SystemExit(f"{arm}: no go after {word}")

    async def main() -> None:
        pool = HttpPool(asyncio.get_running_loop())
        router = library_bench.static_router(backend, mock_url, MODEL)
        if arm == "pool":
            call = library_bench.pool_call(pool, backend, mock_url, MODEL)
        else:
            call = library_bench.generate_call(router, MODEL)
        try:
            for _ in range(200):
                await call()
            step("warm")
            for _ in range(calls):
                await call()
            step("done")
        finally:
            await router.close()
            await pool.close()

    asyncio.run(main())


def measure(backend: str, calls: int) -> dict[str, Any]:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        mock = procs.start_mock("mock", cpus=None, log_dir=workdir)
        try:
            counts = {arm: measure_arm(arm, backend, mock.url, calls, workdir) for arm in ARMS}
        finally:
            mock.stop()
    return {"backend": backend, "calls": calls, "instructions_per_call": per_call(counts, calls)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.instructions")
    p.add_argument("--backend", choices=("openai", "ollama"), default="openai")
    p.add_argument("--calls", type=int, default=1000)
    p.add_argument("--json-out", default="")
    p.add_argument("--child", choices=ARMS, help=argparse.SUPPRESS)
    p.add_argument("--mock-url", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        run_child(args.child, args.backend, args.mock_url, args.calls)
        return
    result = json.dumps(measure(args.backend, args.calls), indent=2)
    if args.json_out:
        Path(args.json_out).write_text(result + "\n")
    print(result)


if __name__ == "__main__":
    main()
