"""The last hour of gateway traffic per configured model, per minute, in memory.

The admin page draws its small charts from this. Memory is fixed: one 60-slot ring per
*configured* model (the set is refreshed from the store on start and after every config
change), so model names invented by clients are never recorded. Each process keeps its own
rings: behind several replicas, the page shows the replica that answered it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm_backends.store.models import LLMBackend

log = structlog.get_logger("llm_backends.ui")

MINUTES = 60
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

    def track(self, model_names: Iterable[str]) -> None:
        """Keep rings for exactly these models (existing history kept, removed ones dropped)."""
        wanted = set(model_names)
        self._rings = {name: self._rings.get(name) or Ring() for name in wanted}

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


class ConfiguredModels:
    """Refreshes a Timeseries' model set from the store; one refresh at a time, re-run when a
    change arrives during one (a storm of writes costs at most two queries)."""

    def __init__(self, timeseries: Timeseries, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._timeseries = timeseries
        self._sessions = sessions
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def changed(self, _model_name: str | None = None) -> None:
        """A config-change listener (called on the event loop)."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._refresh())

    async def refresh(self) -> None:
        async with self._sessions() as session:
            names = (await session.scalars(select(LLMBackend.model_name))).all()
        self._timeseries.track(names)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _refresh(self) -> None:
        while True:
            self._again = False
            try:
                await self.refresh()
            except Exception as error:  # the store may be down: keep the old set
                log.warning("timeseries_refresh_failed", error=type(error).__name__)
            if not self._again:
                return
