"""What one `bench.run` holds: the scenario names, the plan (rounds, durations) and its log line."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

SCENARIOS = (
    "startup",
    "chat",
    "stream",
    "auto",
    "admin",
    "library",
    "ollama",
    "tools",
    "embeddings",
    "workers",
    "fleet",
    "propagation",
    "profile",
)


@dataclass
class Plan:
    rounds: int
    duration: float
    warmup: float
    cold_rounds: int
    admin_switches: int
    lib_calls: int
    lib_blocks: int
    only: tuple[str, ...]
    quick: bool
    #: Waits until every running gateway is idle; called before each measurement.
    settle: Callable[[], float] = lambda: 0.0


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)
