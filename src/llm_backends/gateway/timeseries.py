"""The last hour of gateway traffic per configured model, per minute, in memory.

The admin page draws its small charts from this. Memory is bounded: one 60-slot ring per
model the store has an enabled config for, learnt from the gateway's own config lookups (no
query of its own), so model names invented by clients are never recorded. Each process keeps
its own rings: behind several replicas, the page shows the replica that answered it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llm_backends.router.config_source import ConfigSource
from llm_backends.router.types import BackendConfig

MINUTES = 60
#: A safety cap on rings (configs are made by admins, so far fewer in practice): ~4 KiB each.
MAX_MODELS = 10_000
#: Statuses that are the client's doing, not the backend's: not counted as errors.
_NOT_ERRORS = frozenset({"499"})


@dataclass(slots=True)
class Ring:
    """Per-minute counters of one model; slot = minute % MINUTES, stamped with its minute."""

    stamps: list[int] = field(default_factory=lambda: [-1] * MINUTES)
    requests: list[int] = field(default_factory=lambda: [0] * MINUTES)
    errors: list[int] = field(default_factory=lambda: [0] * MINUTES)
    latency_sum: list[float] = field(default_factory=lambda: [0.0] * MINUTES)
    latency_count: list[int] = field(default_factory=lambda: [0] * MINUTES)

    def add(self, minute: int, error: bool, seconds: float | None) -> None:
        slot = minute % MINUTES
        if self.stamps[slot] != minute:
            self.stamps[slot] = minute
            self.requests[slot] = self.errors[slot] = self.latency_count[slot] = 0
            self.latency_sum[slot] = 0.0
        self.requests[slot] += 1
        if error:
            self.errors[slot] += 1
        if seconds is not None:
            self.latency_sum[slot] += seconds
            self.latency_count[slot] += 1

    def series(self, now_minute: int) -> dict[str, list[Any]]:
        """Oldest minute first, the current (partial) minute last; absent minutes are 0/None."""
        requests: list[int] = []
        errors: list[int] = []
        latency: list[float | None] = []
        for minute in range(now_minute - MINUTES + 1, now_minute + 1):
            slot = minute % MINUTES
            if self.stamps[slot] != minute:
                requests.append(0)
                errors.append(0)
                latency.append(None)
                continue
            requests.append(self.requests[slot])
            errors.append(self.errors[slot])
            count = self.latency_count[slot]
            latency.append(round(self.latency_sum[slot] / count * 1000, 1) if count else None)
        return {"requests": requests, "errors": errors, "latency_ms": latency}


class Timeseries:
    """Rings of the configured models; `record` is the gateway metrics' per-request hook."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._rings: dict[str, Ring] = {}

    def configured(self, model: str) -> None:
        """`model` has a config: record its traffic from now on (kept while the process runs,
        so a config toggled off and on keeps its hour)."""
        if model not in self._rings and len(self._rings) < MAX_MODELS:
            self._rings[model] = Ring()

    def tracked(self) -> frozenset[str]:
        return frozenset(self._rings)

    def record(self, model: str, status: str, seconds: float | None) -> None:
        ring = self._rings.get(model)
        if ring is not None:
            error = status[:1] != "2" and status not in _NOT_ERRORS
            ring.add(int(self._clock() // 60), error, seconds)

    def snapshot(self, model: str | None = None) -> dict[str, Any]:
        now_minute = int(self._clock() // 60)
        names = sorted(self._rings) if model is None else [m for m in (model,) if m in self._rings]
        return {
            "minutes": MINUTES,
            "end": time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime(now_minute * 60)),
            "models": {name: self._rings[name].series(now_minute) for name in names},
        }


class TrackingConfigSource:
    """The gateway's config source, telling a Timeseries which models have a config."""

    def __init__(self, inner: ConfigSource, timeseries: Timeseries) -> None:
        self._inner = inner
        self._timeseries = timeseries

    async def get(self, model_name: str) -> BackendConfig | None:
        config = await self._inner.get(model_name)
        if config is not None:
            self._timeseries.configured(model_name)
        return config

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
