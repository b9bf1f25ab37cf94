"""Which ASGI server should `llm-backends serve` run on? uvicorn vs granian (issue #15).

uvicorn with httptools + uvloop is what `llm-backends serve` runs today
(src/llm_backends/serving/); granian is a Rust HTTP server with an ASGI interface. Each server
runs one worker process pinned to core 0; the instant mock, the load generator (wrk with
bench/lua/post_json.lua, through bench.load) and this orchestrator are on core 1. Two apps:

* `trivial`: a raw ASGI app answering a small JSON: the server's own cost per request;
* `real`: the project's app (`create_app()`, wrapped and frozen as `run_server` does) serving
  `POST /v1/chat/completions`, routed to bench.mock_backend by a config made through the
  Admin API as bench/targets.py does. uvicorn gets the same options as `run_server`
  (uvloop, httptools, no access log); `DrainingServer` only changes signal handling.

Reported per server and app: c=1 p50 latency, c=32 req/s, and CPU µs per request of the
server's process tree (utime+stime from /proc/<pid>/stat over the measured run, divided by the
requests wrk completed), medians over all samples. Each round starts fresh servers and measures
them in turn `--reps` times, the order alternating. Other work shares this 2-core machine (and
its core 0): CPU per request is the figure to trust, and best as the paired ratio to the first
server's in the same sample ("vs ref"); every sample's value is printed to show the spread.
`serve` is `llm-backends serve` itself (real app only), to check that the `uvicorn` row is it.

    python -m bench.server_compare [--rounds 3] [--reps 2] [--duration 4]
        [--apps trivial,real] [--servers uvicorn,serve,granian] [--json]

Writes bench/results/server_compare.json.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from bench import procs, targets

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

TRIVIAL_BODY = (
    b'{"id":"chatcmpl-1","object":"chat.completion","model":"mock","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"Hello from the trivial app."},'
    b'"finish_reason":"stop"}]}'
)
TRIVIAL_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(TRIVIAL_BODY)).encode()),
]


async def trivial_app(scope: Message, receive: Receive, send: Send) -> None:
    """Reads the request body and answers a fixed small JSON: no framework, no routing."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": TRIVIAL_HEADERS})
    await send({"type": "http.response.body", "body": TRIVIAL_BODY})


def real_app() -> Any:
    """The app as `llm-backends serve` builds it (serving.run_server), for any ASGI server:
    logging configured, start-up objects frozen, the grace-deadline 503 wrapper outside."""
    import gc

    from llm_backends.app import create_app
    from llm_backends.logs import configure_logging
    from llm_backends.serving.cut import AnswerCutRequests
    from llm_backends.settings import Settings

    settings = Settings()
    configure_logging(
        settings.log_level, settings.log_json, flush_interval=settings.log_flush_interval
    )
    app = create_app(settings)
    gc.collect()
    gc.freeze()
    return AnswerCutRequests(app)


APPS = {
    "trivial": ("bench.server_compare:trivial_app", False),
    "real": ("bench.server_compare:real_app", True),
}


def uvicorn_argv(target: str, factory: bool) -> list[str]:
    argv = [procs.PYTHON, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", "{port}"]
    argv += ["--loop", "uvloop", "--http", "httptools", "--no-access-log", "--lifespan", "on"]
    argv += ["--log-level", "warning", "--workers", "1"]
    return [*argv, "--factory"] if factory else argv


def granian_argv(loop: str, extra: tuple[str, ...] = ()) -> Callable[[str, bool], list[str]]:
    def build(target: str, factory: bool) -> list[str]:
        argv = [procs.PYTHON, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1"]
        argv += ["--port", "{port}", "--workers", "1", "--http", "1", "--no-ws"]
        argv += ["--loop", loop, "--log-level", "warning", "--no-access-log", *extra]
        return [*argv, "--factory", target] if factory else [*argv, target]

    return build


def serve_argv(target: str, factory: bool) -> list[str]:
    """`llm-backends serve` itself (the real app only): checks that the `uvicorn` row, the
    same app and options through uvicorn's CLI, is what production runs."""
    cli = targets.llm_backends_cli() or Path(procs.PYTHON).with_name("llm-backends")
    return [str(cli), "serve", "--host", "127.0.0.1", "--port", "{port}", "--no-migrate"]


SERVERS: dict[str, Callable[[str, bool], list[str]]] = {
    "uvicorn": uvicorn_argv,
    "serve": serve_argv,
    "granian": granian_argv("uvloop"),
    "granian-asyncio": granian_argv("asyncio"),
    "granian-st": granian_argv("uvloop", ("--runtime-mode", "st")),
    "granian-rusttask": granian_argv("uvloop", ("--task-impl", "rust")),
}


class Bench:
    """One run's shared state: the mock, the real app's database, the load parameters."""

    def __init__(self, work: Path, duration: float) -> None:
        self.work = work
        self.duration = duration
        self.mock = procs.start_mock("mock-servers", log_dir=work / "logs")
        self.token = "bench-" + secrets.token_hex(16)
        self.env: dict[str, str | None] = {
            "DATABASE_URL": f"sqlite:///{work / 'bench.db'}",
            "ADMIN_API_TOKEN": self.token,
            "OLLAMA_URL": self.mock.url,
            "TOKEN_FILE": str(work / "token"),
            "SHUTDOWN_DELAY_SECONDS": "0",
            "PYTHONPATH": str(procs.ROOT),
        }
        self.configured = False
        cli = targets.llm_backends_cli() or Path(procs.PYTHON).with_name("llm-backends")
        env = procs.child_env(self.env)
        subprocess.run([str(cli), "migrate"], env=env, check=True, capture_output=True)

    def gateway(self, server: str, app: str) -> targets.Gateway:
        target, factory = APPS[app]
        argv = SERVERS[server](target, factory)
        return targets.Gateway(f"{server}-{app}", argv, self.env, self.work, self.work / "logs")

    def start(self, gw: targets.Gateway, app: str) -> None:
        """Spawn on core 0; for the real app, make its config once (the database persists)."""
        child = gw.spawn()
        if app == "trivial":
            procs.wait_port(child, 30)
            return
        procs.wait_http(child, "/ready", 60, ok=lambda s: s == 200)
        if not self.configured:
            targets.create_configs(gw, [targets.cfg("bench-openai", "openai", self.mock.url)])
            self.configured = True

    def load(self, gw: targets.Gateway, concurrency: int, duration: float) -> dict[str, Any]:
        argv = procs.load_argv(
            f"http://127.0.0.1:{gw.port}{targets.CHAT_PATH}",
            json.dumps(targets.chat_body("bench-openai")),
            concurrency=concurrency,
            duration=duration,
            warmup=0,
            engine="wrk",
        )
        return procs.run_json(argv, cpus=procs.CLIENT_CPU, timeout=duration + 60)

    def measure(self, gw: targets.Gateway, concurrency: int) -> dict[str, float]:
        """A warm-up run, then the measured one; CPU of the server's tree over the latter."""
        self.load(gw, concurrency, 1)
        procs.wait_idle([gw.pid])
        hz = os.sysconf("SC_CLK_TCK")
        ticks0 = procs.cpu_ticks(gw.pid)
        res = self.load(gw, concurrency, self.duration)
        ticks = procs.cpu_ticks(gw.pid) - ticks0
        if res["errors"] or not res["requests"]:
            raise RuntimeError(f"{gw.name} c={concurrency}: {res}")
        return {
            "p50_ms": float(res["p50_ms"]),
            "p99_ms": float(res["p99_ms"]),
            "rps": float(res["rps"]),
            "cpu_us": ticks / hz * 1e6 / int(res["requests"]),
            "cpu_share": ticks / hz / float(res["duration_s"]),
        }

    def stop(self) -> None:
        self.mock.stop()


def run_round(
    bench: Bench, servers: list[str], apps: list[str], reps: int
) -> list[dict[str, dict[str, Any]]]:
    """Fresh servers (all idle on core 0 but the one measured), measured in turn `reps`
    times, the order alternating: neighbours' load drifts alike for every server."""
    samples: list[dict[str, dict[str, Any]]] = [{} for _ in range(reps)]
    for app in apps:
        names = [s for s in servers if s != "serve" or app == "real"]
        gateways = [bench.gateway(name, app) for name in names]
        try:
            for gw in gateways:
                bench.start(gw, app)
            for rep in range(reps):
                order = list(zip(names, gateways, strict=True))
                for name, gw in order if rep % 2 == 0 else order[::-1]:
                    measured = {f"c{c}": bench.measure(gw, c) for c in (1, 32)}
                    samples[rep][f"{name}/{app}"] = measured
        finally:
            for gw in gateways:
                gw.stop()
    return samples


def summarize(samples: list[dict[str, dict[str, Any]]], reference: str) -> dict[str, Any]:
    """Medians over samples, each value's list, and CPU per request as a ratio to the
    reference server's in the same sample (paired: drift in the neighbours' load cancels)."""
    cases: dict[str, Any] = {}
    for key in sorted(samples[0], key=lambda k: (k.split("/")[1] == "real", k)):
        ref_key = f"{reference}/{key.split('/')[1]}"
        cases[key] = {}
        for conc in ("c1", "c32"):
            metrics: dict[str, Any] = {}
            for metric in samples[0][key][conc]:
                values = [r[key][conc][metric] for r in samples if key in r]
                metrics[metric] = round(statistics.median(values), 4)
                metrics[metric + "_all"] = [round(v, 4) for v in values]
            ratios = [
                r[key][conc]["cpu_us"] / r[ref_key][conc]["cpu_us"]
                for r in samples
                if key in r and ref_key in r
            ]
            if ratios:
                metrics["cpu_vs_ref"] = round(statistics.median(ratios), 3)
            cases[key][conc] = metrics
    return cases


def versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {}
    for pkg in ("uvicorn", "granian", "uvloop", "httptools", "starlette", "fastapi"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = ""
    out["wrk"] = targets.wrk_version()
    return out


def print_table(result: dict[str, Any]) -> None:
    print(
        f"{'server/app':<26}{'c=1 p50 ms':>11}{'c=1 cpu µs':>12}"
        f"{'c=32 req/s':>12}{'c=32 cpu µs':>13}{'c=1/c=32 cpu vs ref':>21}  c=32 cpu µs each"
    )
    for key, case in result["cases"].items():
        a, b = case["c1"], case["c32"]
        spread = " ".join(f"{v:.0f}" for v in b["cpu_us_all"])
        print(
            f"{key:<26}{a['p50_ms']:>11.3f}{a['cpu_us']:>12.0f}"
            f"{b['rps']:>12.0f}{b['cpu_us']:>13.0f}"
            f"{a.get('cpu_vs_ref', 0):>11.2f}/{b.get('cpu_vs_ref', 0):<9.2f}  {spread}"
        )
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m bench.server_compare")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--reps", type=int, default=2, help="alternations per round")
    p.add_argument("--duration", type=float, default=4.0, help="seconds per measured run")
    p.add_argument("--servers", default="uvicorn,serve,granian", help=f"from {','.join(SERVERS)}")
    p.add_argument("--apps", default="trivial,real", help="from trivial,real")
    p.add_argument("--json", action="store_true", help="print only the JSON result")
    args = p.parse_args(argv)
    servers, apps = args.servers.split(","), args.apps.split(",")
    for name in servers:
        if name not in SERVERS:
            p.error(f"unknown server {name!r}")
    for name in apps:
        if name not in APPS:
            p.error(f"unknown app {name!r}")

    procs.pin_self(procs.CLIENT_CPU)
    samples: list[dict[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-servers-") as tmp:
        bench = Bench(Path(tmp), args.duration)
        try:
            for index in range(args.rounds):  # alternating: every case once per round
                order = servers if index % 2 == 0 else servers[::-1]
                samples += run_round(bench, order, apps, args.reps)
        finally:
            bench.stop()
    result: dict[str, Any] = {
        "cases": summarize(samples, servers[0]),
        "reference": servers[0],
        "rounds": args.rounds,
        "reps": args.reps,
        "duration_s": args.duration,
        "versions": versions(),
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = procs.BENCH / "results" / "server_compare.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return result


if __name__ == "__main__":
    main()
