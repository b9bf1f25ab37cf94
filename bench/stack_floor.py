"""How far the gateway's stream TTFB can fall: the floor of its own server stack (issue #15).

    python -m bench.stack_floor [--rounds 3] [--duration 3] [--json]
    python -m bench.stack_floor --port P --target-port M      # the forwarder alone

`make bench`'s `relay` arm is the floor of any process in a request's path on this VM. This is
the floor of *this* gateway's stack: `llm-backends serve`'s HTTP server (uvicorn with
serving/protocol.py and `SERVER_OPTIONS`) and the router's HTTP pool (router/transport/), with
nothing between them: the request body read, one POST of it to the mock, the answer's bytes
sent back as they arrive (no validation, routing, translation, metrics or logs). Whatever
llm-backends adds beyond it is the gateway's own logic; whatever it adds itself is what no
logic, however lean, can take away while the stack stays.

Added stream time to first byte at one client, instant and paced mock (8 chunks 5 ms apart,
as `make bench`), for `direct`, `relay`, `stack` (this forwarder) and `llm-backends`, each
pinned to core 0 like the gateways in `make bench`, in interleaved rounds; medians.
Writes bench/results/stack_floor.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench import procs, relay, targets

NAME = "stack"
RESULT = procs.ROOT / "bench" / "results" / "stack_floor.json"
ARMS = ("direct", relay.NAME, NAME, "llm-backends")
PACED_CHUNK_DELAY_MS = 5.0
_JSON = (("content-type", "application/json"),)
_SSE = ((b"content-type", b"text/event-stream"),)


def forwarder(target: str) -> Any:
    """An ASGI app: each request's body POSTed to `target` + its path, the answer's bytes
    streamed back unread (status 200 whatever the mock said: the mock only says 200 here)."""
    from llm_backends.router.transport.pool import HttpPool

    pools: list[HttpPool] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        if not pools:
            pools.append(HttpPool(asyncio.get_running_loop()))
        response = await pools[0].request(
            b"POST",
            target + scope["path"],
            message.get("body", b""),
            _JSON,
            connect_timeout=5.0,
            read_timeout=30.0,
        )
        await send({"type": "http.response.start", "status": 200, "headers": _SSE})
        while (chunk := await response.read_chunk()) is not None:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        response.release()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def serve(port: int, target_port: int) -> None:
    import uvicorn

    from llm_backends.serving import SERVER_OPTIONS

    app = forwarder(f"http://127.0.0.1:{target_port}")
    options = {**SERVER_OPTIONS, "lifespan": "off", "log_level": "warning"}
    uvicorn.run(app, host="127.0.0.1", port=port, **options)


def spawn(name: str, target_port: int, log_dir: Path | None, timeout: float = 20.0) -> procs.Child:
    """The forwarder to `target_port`, pinned to the gateways' core, once it accepts."""
    return procs.start_forwarder(name, "bench.stack_floor", target_port, log_dir, timeout)


def summarize(samples: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    """mode -> arm -> TTFB p50s of each round => medians, added over `direct`, and the
    gateway's own share: llm-backends' added minus the stack's."""
    out: dict[str, Any] = {}
    for mode, arms in samples.items():
        direct = statistics.median(arms["direct"])
        rows = {
            arm: {
                "ttfb_p50_ms": round(statistics.median(values), 4),
                "added_ms": round(statistics.median(values) - direct, 4),
                "samples": values,
            }
            for arm, values in arms.items()
        }
        ours, floor = rows.get("llm-backends"), rows.get(NAME)
        if ours is not None and floor is not None:
            rows["logic"] = {"added_ms": round(ours["added_ms"] - floor["added_ms"], 4)}
        out[mode] = rows
    return out


def _ttfb(port: int, model: str, duration: float) -> float:
    body = json.dumps(targets.chat_body(model, stream=True))
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    argv = procs.load_argv(
        url, body, concurrency=1, duration=duration, warmup=1.0, engine="python", stream=True
    )
    result = procs.run_json(argv, cpus=procs.CLIENT_CPU, timeout=duration + 60)
    if result.get("errors") or result.get("ttfb_p50_ms") is None:
        raise RuntimeError(f"{url}: {result}")
    return float(result["ttfb_p50_ms"])  # type: ignore[arg-type]


def compare(rounds: int, duration: float) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="stack-floor-"))
    logs = work / "logs"
    mocks = targets.start_mocks(logs, PACED_CHUNK_DELAY_MS)
    children: list[procs.Child] = []
    gateway = targets.llm_backends_gateway(work, mocks.main.url, stub=False, log_level=None)
    try:
        gateway.start_until_health(60)
        targets.create_configs(
            gateway,
            [
                targets.cfg("bench-openai", "openai", mocks.main.url),
                targets.cfg("bench-paced", "openai", mocks.paced.url),
            ],
        )
        ports: dict[str, dict[str, tuple[int, str]]] = {}
        for mode, mock in (("instant", mocks.main), ("paced", mocks.paced)):
            relayed = relay.spawn(f"relay-{mode}", mock.port, logs)
            stack = spawn(f"stack-{mode}", mock.port, logs)
            children += [relayed, stack]
            model = "bench-paced" if mode == "paced" else "bench-openai"
            ports[mode] = {
                "direct": (mock.port, "mock"),
                relay.NAME: (relayed.port, "mock"),
                NAME: (stack.port, "mock"),
                "llm-backends": (gateway.port, model),
            }
        samples: dict[str, dict[str, list[float]]] = {m: {a: [] for a in ARMS} for m in ports}
        for index in range(rounds):
            order = ARMS if index % 2 == 0 else tuple(reversed(ARMS))
            for mode, arms in ports.items():
                for arm in order:
                    port, model = arms[arm]
                    samples[mode][arm].append(_ttfb(port, model, duration))
    finally:
        for child in children:
            child.stop()
        gateway.stop()
        mocks.stop()
    return {"rounds": rounds, "duration_s": duration, "modes": summarize(samples)}


def print_table(result: dict[str, Any]) -> None:
    print("stream TTFB at one client, added over direct (median of rounds, ms)")
    for mode, rows in result["modes"].items():
        cells = [f"{arm} {rows[arm]['added_ms']:.3f}" for arm in ARMS if arm != "direct"]
        cells.append(f"gateway logic (llm-backends - stack) {rows['logic']['added_ms']:.3f}")
        print(f"  {mode:8s} " + " | ".join(cells))


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.stack_floor", description=__doc__)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=3.0, help="seconds per load run")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--port", type=int, help="serve the forwarder alone on this port")
    p.add_argument("--target-port", type=int, help="the mock the forwarder sends to")
    opts = p.parse_args(argv)
    if opts.port is not None:
        if opts.target_port is None:
            p.error("--port needs --target-port")
        serve(opts.port, opts.target_port)
        return
    result = compare(opts.rounds, opts.duration)
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    if opts.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
