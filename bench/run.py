"""`make bench`: llm-backends against direct calls and LiteLLM proxy, on this machine, one run.

    python -m bench.run [--quick] [--rounds N] [--duration S] [--only chat,stream,...]
                        [--stub] [--no-setup] [--no-before] [--no-relay]
                        [--gateway-log-level LEVEL]

Scenarios (`--only` takes any of them, comma-separated):
  chat     non-streaming chat, concurrency 1 and 32: req/s, p50/p99, added latency vs direct
  ollama   the same on Ollama's API (POST /api/chat, stream false); LiteLLM proxy has none
  stream   streaming: time to first byte (paced mock, c=1) and req/s (instant mock, c=32)
  library  router.generate() cost per call beyond a raw aiohttp call to the same mock
  auto     `auto` with MLX down (closed port; accept-then-hang): first and following requests
  admin    time until an Admin API change is seen by the gateway
  tools    chat with tools and a named tool_choice, c=1 and 32 (bench/toolcall.py)
  startup  cold start (spawn to first 200 on chat) of each gateway; peak RSS is read after load
  embeddings  /v1/embeddings and /api/embed via llm-backends vs direct (bench/embeddings_bench.py)
  workers  chat req/s (c=32) of `serve --workers 1` vs `--workers 2`, CPU per request
  fleet    failover (1 of 3 servers killed, 32 clients), affinity on vs off (bench/fleet_bench.py)
  propagation  a PUT via process A seen by process B and a library router (bench/propagation.py)

Rounds are interleaved (direct, llm-backends, litellm, then again, starting one further each
round) and each figure is the median over rounds. Gateways run pinned to core 0; the mocks,
the load generator and this orchestrator to core 1 (see bench/RESULTS.md). `chat` and `stream`
also measure the code before issue #15 (`before`, bench/before.py), the reference of that
issue's targets, in the same run; chat c=1 and stream TTFB c=1 also a zero-logic TCP relay
(`relay`, bench/relay.py), the floor any in-path process adds on this VM.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import (
    before,
    embeddings_bench,
    fleet_bench,
    procs,
    report,
    report_md,
    targets,
    toolcall,
    workers,
)
from bench import relay as relay_arm
from bench.arms import Setup, scenario_startup, start_gateways
from bench.plan import SCENARIOS, Plan, log
from bench.profile import scenario_profile
from bench.propagation import scenario_propagation
from bench.rounds import interleaved, load, summarize_load
from bench.scenarios import scenario_admin, scenario_auto, scenario_library
from bench.targets import Target


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, Plan]:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer, shorter rounds (~3 min)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 3, quick 2)")
    p.add_argument("--duration", type=float, help="seconds per load run (default 5, quick 3)")
    p.add_argument("--only", default="", help=f"comma-separated subset of {','.join(SCENARIOS)}")
    p.add_argument(
        "--stub",
        action="store_true",
        help="use bench/stub_gateway.py in place of the llm-backends server",
    )
    p.add_argument("--no-setup", action="store_true", help="skip bench/setup.sh")
    p.add_argument("--no-litellm", action="store_true", help="leave LiteLLM out")
    p.add_argument("--no-portkey", action="store_true", help="leave Portkey out")
    p.add_argument(
        "--no-before",
        action="store_true",
        help=f"leave out {before.LABEL} (the issue #15 checks then use recorded figures)",
    )
    p.add_argument("--no-relay", action="store_true", help=f"leave out the {relay_arm.LABEL}")
    p.add_argument(
        "--gateway-log-level",
        default=None,
        help="LOG_LEVEL for llm-backends (default: its own default)",
    )
    p.add_argument("--out", default=str(procs.BENCH / "results" / "latest.json"))
    p.add_argument("--markdown", default=str(procs.BENCH / "RESULTS.md"))
    args = p.parse_args(argv)
    only = tuple(s for s in args.only.split(",") if s) or SCENARIOS
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    q = args.quick
    plan = Plan(
        rounds=args.rounds or (2 if q else 3),
        duration=args.duration or (3.0 if q else 5.0),
        warmup=0.5 if q else 1.0,
        cold_rounds=1 if q else 3,
        admin_switches=1 if q else 3,
        lib_calls=500 if q else 1000,
        lib_blocks=5 if q else 9,
        only=only,
        quick=q,
    )
    return args, plan


# -- set-up -------------------------------------------------------------------------------


def run_setup() -> str | None:
    """bench/setup.sh (idempotent): LiteLLM's venv and wrk. Returns an error text or None."""
    script = procs.BENCH / "setup.sh"
    try:
        out = subprocess.run(
            ["bash", str(script)], capture_output=True, text=True, timeout=900, check=False
        )
    except subprocess.TimeoutExpired:
        return "bench/setup.sh timed out"
    if out.returncode != 0:
        return f"bench/setup.sh failed: {(out.stdout + out.stderr)[-800:]}"
    return None


def fresh_work_dir() -> Path:
    """bench/.work/run-<time>-<pid>, for logs, the database and the gateways' cwd.

    Leftovers of finished runs are removed; a run whose process is still alive is left alone
    (deleting its folder breaks its gateways, which run inside it).
    """
    base = procs.BENCH / ".work"
    base.mkdir(exist_ok=True)
    for old in base.glob("run-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and Path(f"/proc/{pid}").exists():
            continue
        shutil.rmtree(old, ignore_errors=True)
    work = base / f"{time.strftime('run-%Y%m%d-%H%M%S')}-{os.getpid()}"
    work.mkdir()
    return work


# -- load scenarios (all gateways side by side; the others: bench/scenarios.py) ------------


def scenario_chat(
    plan: Plan, tgts: list[Target], xcore: Target, relay: relay_arm.Arm | None = None
) -> dict[str, Any]:
    """At c=1 a mock on the gateway's core is measured too: the cost of the topology alone
    (two cross-core hops), which every gateway's added latency includes twice; and the relay,
    the cost of one more process in the path."""
    res: dict[str, Any] = {}
    c1 = [*relay_arm.with_arm(tgts, relay.target() if relay else None), xcore]
    for conc in (1, 32):
        runs = interleaved(
            plan,
            c1 if conc == 1 else tgts,
            f"chat c={conc}",
            lambda t, c=conc: load(t, concurrency=c, duration=plan.duration, warmup=plan.warmup),
        )
        res[f"c{conc}"] = summarize_load(runs)
    return res


def scenario_ollama(plan: Plan, tgts: list[Target]) -> dict[str, Any]:
    """Non-streaming Ollama `POST /api/chat` at c=1 and 32; added latency is vs the mock's own
    /api/chat. Only targets with an Ollama API take part (not LiteLLM proxy)."""
    res: dict[str, Any] = {}
    for conc in (1, 32):
        runs = interleaved(
            plan,
            tgts,
            f"ollama chat c={conc}",
            lambda t, c=conc: load(
                t, concurrency=c, duration=plan.duration, warmup=plan.warmup, api="ollama"
            ),
        )
        res[f"c{conc}"] = summarize_load(runs)
    return res


def scenario_stream(
    plan: Plan, paced: list[Target], instant: list[Target], relay: relay_arm.Arm | None = None
) -> dict[str, Any]:
    """TTFB against the paced mock (does the gateway really stream?) and the instant one:
    between paced requests the gateway's core sits idle for ms, and waking an idle vCPU costs
    this VM ~0.5 ms; the instant mock keeps it busy, so its TTFB is the gateway's own work.
    The relay (TTFB only) relays to the mock `direct` calls in each."""

    def streams(what: str, tgts: list[Target], concurrency: int, pacing: bool = False) -> Any:
        return interleaved(
            plan,
            tgts,
            what,
            lambda t: load(
                t,
                concurrency=concurrency,
                duration=plan.duration,
                warmup=plan.warmup,
                stream=True,
                paced=pacing,
                engine="python",
            ),
        )

    floor_paced = relay.target(paced=True) if relay else None
    floor_instant = relay.target() if relay else None
    ttfb = streams("stream TTFB c=1", relay_arm.with_arm(paced, floor_paced), 1, pacing=True)
    ttfb_instant = streams("stream TTFB c=1 instant", relay_arm.with_arm(instant, floor_instant), 1)
    rps = streams("stream c=32", instant, 32)
    return {
        "ttfb_c1": summarize_load(ttfb, key="ttfb_p50_ms"),
        "ttfb_c1_instant": summarize_load(ttfb_instant, key="ttfb_p50_ms"),
        "c32": summarize_load(rps),
    }


# -- orchestration ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args, plan = parse_args(argv)
    t_start = time.time()
    load_start = os.getloadavg()
    procs.pin_self(procs.CLIENT_CPU)
    setup_error = None if args.no_setup else run_setup()
    if setup_error:
        log(f"WARNING: {setup_error}")
    work = fresh_work_dir()
    log(
        f"work dir {work}; scenarios: {', '.join(plan.only)}; rounds {plan.rounds}, "
        f"{plan.duration:g} s per load run"
    )
    mocks = targets.start_mocks(work / "logs", paced_chunk_delay_ms=5.0)
    setup: Setup | None = None
    results: dict[str, Any] = {}
    try:
        setup = start_gateways(args, work, mocks, plan.only)
        for name, note in setup.notes.items():
            log(f"NOTE {name}: {note}")
        gws = list(setup.gateways.values())
        live = setup
        plan.settle = lambda: procs.wait_idle(live.pids())
        errors: dict[str, str] = {}
        timings: dict[str, float] = {}  # wall seconds per scenario, shown by the report

        def guarded(name: str, work_fn: Any) -> None:
            """Run one scenario; its failure is recorded, and the others still run."""
            if name not in plan.only:
                return
            started = time.time()
            try:
                value = work_fn()
            except Exception as error:  # reported in the results, not swallowed
                errors[name] = f"{type(error).__name__}: {str(error)[-600:]}"
                log(f"ERROR in scenario {name}: {errors[name]}")
                return
            finally:
                timings[name] = round(time.time() - started, 1)
            if value is not None:
                results[name] = value

        guarded("startup", lambda: scenario_startup(plan, setup))
        tgts = [targets.direct_target(mocks)] + [g.target("bench-paced") for g in gws]
        arm = setup.before.gateway.target("bench-paced") if setup.before else None
        guarded(
            "chat",
            lambda: scenario_chat(
                plan, before.with_arm(tgts, arm), targets.xcore_target(mocks), setup.relay
            ),
        )
        ollama = [t for t in tgts if t.ollama_model is not None]
        guarded("ollama", lambda: scenario_ollama(plan, ollama))
        guarded("tools", lambda: toolcall.scenario_tools(plan, tgts, interleaved, summarize_load))
        paced = [targets.direct_paced_target(mocks)] + [g.target("bench-paced") for g in gws]
        guarded(
            "stream",
            lambda: scenario_stream(
                plan, before.with_arm(paced, arm), before.with_arm(tgts, arm), setup.relay
            ),
        )
        if setup.before is not None:
            setup.before.gateway.stop()  # in chat and stream only: no idle process on core 0
        if setup.relay is not None:
            setup.relay.stop()
        # Peak RSS after the loads (VmHWM covers the whole life of the process).
        results["resources"] = {
            name: {
                "peak_rss_mb": round(procs.peak_rss_mb(gw.pid), 1) if gw.child.alive() else None,
                "idle_rss_mb": setup.idle_rss.get(name),
                "cold_start_s": setup.cold.get(name, []),
                "cold_start_median_s": round(statistics.median(setup.cold[name]), 3)
                if setup.cold.get(name)
                else None,
                "after_load": any(s in plan.only for s in ("chat", "ollama", "stream")),
            }
            for name, gw in setup.gateways.items()
        }
        llmb_gw = setup.gateways.get(setup.llmb.name) if setup.llmb else None
        if llmb_gw is not None:
            guarded("auto", lambda: scenario_auto(llmb_gw, mocks))
            guarded(
                "admin",
                lambda: scenario_admin(llmb_gw, mocks, setup.llmb_ids, plan.admin_switches),
            )
            guarded("embeddings", lambda: embeddings_bench.scenario_embeddings(llmb_gw, mocks))
            guarded("profile", lambda: scenario_profile(llmb_gw.port, llmb_gw.pid, plan.duration))
        # Without the server, the router runs against a static in-process config source.
        guarded("library", lambda: scenario_library(plan, setup.llmb, mocks))
        guarded(
            "workers",
            lambda: workers.scenario_workers(
                plan.duration, plan.warmup, plan.rounds, work, mocks, load
            ),
        )
        guarded("fleet", lambda: fleet_bench.scenario_fleet(plan.quick))  # bench/fleet_bench.py
        guarded("propagation", lambda: scenario_propagation(mocks, work))
        if errors:
            results["errors"] = errors
        results["timings_s"] = timings
    finally:
        if setup is not None:
            for gw in setup.gateways.values():
                gw.stop()
            if setup.llmb is not None:
                setup.llmb.stop()
            if setup.before is not None:
                setup.before.gateway.stop()
            if setup.relay is not None:
                setup.relay.stop()
        mocks.stop()

    doc = report.build(
        args=args,
        argv=sys.argv[1:] if argv is None else argv,
        plan={k: v for k, v in vars(plan).items() if k != "settle"},
        results=results,
        gateways=setup.gateways if setup else {},
        notes=setup.notes if setup else {},
        before_arm=setup.before if setup else None,
        relay_arm=setup.relay if setup else None,
        setup_error=setup_error,
        elapsed_s=time.time() - t_start,
        mocks=mocks,
        loadavg=(load_start, os.getloadavg()),
    )
    report.write(doc, Path(args.out), Path(args.markdown))
    print(report_md.table(doc))
    log(f"wrote {args.out} and {args.markdown} in {time.time() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
