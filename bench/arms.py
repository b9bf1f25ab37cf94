"""Starting the gateways under test (ours, LiteLLM, Portkey, before and relay arms); cold starts."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import before, procs, targets
from bench import relay as relay_arm
from bench.plan import SCENARIOS, Plan, log
from bench.targets import Gateway, Mocks


@dataclass
class Setup:
    gateways: dict[str, Gateway]
    notes: dict[str, str]
    llmb: Gateway | None
    llmb_ids: dict[str, int]
    cold: dict[str, list[float]]
    idle_rss: dict[str, float]
    #: The code before issue #15 (bench/before.py), in `chat` and `stream` only.
    before: before.Arm | None = None
    #: The zero-logic relay (bench/relay.py), in `chat` c=1 and `stream` TTFB c=1 only.
    relay: relay_arm.Arm | None = None

    def pids(self) -> list[int]:
        gws = [*self.gateways.values(), *([self.before.gateway] if self.before else [])]
        pids = [g.pid for g in gws if g.child is not None and g.child.alive()]
        return pids + (self.relay.pids() if self.relay else [])


def start_gateways(
    args: argparse.Namespace, work: Path, mocks: Mocks, only: tuple[str, ...] = SCENARIOS
) -> Setup:
    gateways: dict[str, Gateway] = {}
    notes: dict[str, str] = {}
    cold: dict[str, list[float]] = {}
    idle: dict[str, float] = {}
    llmb: Gateway | None = None
    ids: dict[str, int] = {}

    if args.stub or targets.llm_backends_cli() is not None:
        gw = targets.llm_backends_gateway(
            work, mocks.main.url, stub=args.stub, log_level=args.gateway_log_level
        )
        try:
            gw.start_until_health(60)
            ids = targets.create_configs(gw, targets.llm_backends_configs(mocks))
            llmb = gw
            if targets.chat_ok(gw.port, gw.chat_model, gw.headers):
                gateways[gw.name] = gw
                idle[gw.name] = round(procs.rss_mb(gw.pid), 1)
            else:
                notes[gw.name] = (
                    "server and Admin API up, but the gateway does not answer "
                    f"POST {targets.CHAT_PATH} with 200 yet"
                )
        except (RuntimeError, TimeoutError, OSError) as error:
            notes[gw.name] = f"could not start: {str(error)[-600:]}"
            gw.stop()
            llmb = None
    else:
        notes["llm-backends"] = ".venv/bin/llm-backends not found (make install)"

    peers = (
        ("litellm", args.no_litellm, targets.litellm_available, targets.litellm_gateway, 120),
        ("portkey", args.no_portkey, targets.portkey_available, targets.portkey_gateway, 60),
    )
    arm = None
    floor = None
    if any(s in only for s in ("chat", "stream")):
        if not args.no_before:
            arm = before.start(work, mocks, args.gateway_log_level, notes)
        if not args.no_relay:
            floor = relay_arm.start(mocks, work / "logs", notes)
    for name, skipped, available, make, timeout in peers:
        if not skipped:
            _start_peer(
                name,
                available(),
                lambda m=make: m(work, mocks),
                timeout,
                gateways,
                notes,
                cold,
                idle,
            )
    return Setup(gateways, notes, llmb, ids, cold, idle, arm, floor)


def _start_peer(
    name: str,
    unavailable: str | None,
    make: Callable[[], Gateway],
    timeout: float,
    gateways: dict[str, Gateway],
    notes: dict[str, str],
    cold: dict[str, list[float]],
    idle: dict[str, float],
) -> None:
    """Start a peer gateway (LiteLLM, Portkey): its first start is its first cold start; a
    peer that is not installed or does not start is a note, not a failed run."""
    if unavailable is not None:
        notes[name] = unavailable
        return
    gw = make()
    try:
        cold.setdefault(gw.name, []).append(round(gw.start_until_chat(timeout), 3))
        gateways[gw.name] = gw
        idle[gw.name] = round(procs.rss_mb(gw.pid), 1)
    except (RuntimeError, TimeoutError, OSError) as error:
        notes[name] = f"could not start: {str(error)[-600:]}"
        gw.stop()


def scenario_startup(plan: Plan, setup: Setup) -> None:
    """Restart each gateway `cold_rounds` times (interleaved); the last one stays up."""
    for r in range(plan.cold_rounds):
        for name, gw in setup.gateways.items():
            if name in ("litellm", "portkey") and r == 0 and setup.cold.get(name):
                continue  # its first start already was a cold start
            gw.stop()
            plan.settle()
            secs = gw.start_until_chat(120)
            setup.cold.setdefault(name, []).append(round(secs, 3))
            setup.idle_rss[name] = round(procs.rss_mb(gw.pid), 1)
            log(f"cold start {name}: {secs:.3f} s")
