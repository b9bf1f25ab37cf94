"""Per-model route cache: TTL, stale-while-revalidate, single-flight fetches, stale-on-error
and back-off.

The hit path is one dict lookup and one clock comparison, because it runs on every request.
Everything else (fetching, defaults, logging) happens at most once per model per TTL.

No request waits on a refresh: when a route's TTL runs out it is still served, and one fetch
in the background replaces it (stale-while-revalidate). Only a model never seen before, or
one whose config is known to have changed (`invalidate`, called on a change notification),
waits for its lookup, and then all its callers share the one fetch, started at once.

Failure policy, so a dead config source never adds its timeout to every request:
- a failed fetch keeps serving the last known route (or the default one) and the model is
  not looked up again for `retry_seconds`;
- from a failed fetch until the next successful one the source counts as down: callers don't
  wait for re-fetches at all, they get the stale (or default) route at once while the single
  in-flight fetch refreshes it behind them. A hung source thus costs one fetch timeout, once.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from llm_backends.router.config_source import ConfigSource, ConfigSourceUnavailable
from llm_backends.router.fallback import Route
from llm_backends.router.types import BackendConfig

log = structlog.get_logger("llm_backends.router")

#: Builds the route of a fetched config; the flag says it is the default config.
RouteFactory = Callable[[BackendConfig, bool], Route]


@dataclass(slots=True)
class _Entry:
    route: Route
    fresh_until: float
    #: The route came from an answer of the source (not a default used because it was down).
    from_source: bool
    #: Known to be out of date (invalidated): callers wait for the new one instead.
    outdated: bool = False


class RouteCache:
    """Model name -> Route, fetched through a ConfigSource."""

    def __init__(
        self,
        source: ConfigSource,
        *,
        make_route: RouteFactory,
        default_config: Callable[[str], BackendConfig],
        ttl: float,
        retry_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 4096,
    ) -> None:
        """`max_entries` bounds the cache: clients choose model names, and each unknown one
        is cached (as its default route); past the bound the oldest entry is dropped."""
        self.source = source
        self._max_entries = max_entries
        self._make_route = make_route
        self._default_config = default_config
        self._ttl = ttl
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._inflight: dict[str, asyncio.Task[Route]] = {}
        self._tasks: set[asyncio.Task[Route]] = set()
        # Set by a failed fetch, cleared by a successful one: callers then don't wait on fetches.
        self._source_down = False

    async def get(self, model: str) -> Route:
        return self.fresh(model) or await self._refresh(model, self._entries.get(model))

    def fresh(self, model: str) -> Route | None:
        """The route to use now, without a coroutine (`fresh(m) or await get(m)` saves the hit
        path a coroutine frame): the cached one while fresh, and after its TTL too, while one
        background fetch refreshes it. None when the caller must wait for a lookup."""
        entry = self._entries.get(model)
        if entry is None:
            return None
        if self._clock() < entry.fresh_until:
            return entry.route
        if entry.outdated:
            return None
        self._start_fetch(model)
        return entry.route

    def peek(self, model: str) -> Route | None:
        """The cached route, fresh or stale, without fetching."""
        entry = self._entries.get(model)
        return entry.route if entry is not None else None

    def invalidate(self, model: str | None = None) -> None:
        """The config changed: the next call waits for a re-fetch (started here already for
        one cached model). The old route stays as the fallback if the source is down."""
        if model is None:
            for entry in self._entries.values():
                entry.fresh_until = -math.inf
                entry.outdated = True
            self._inflight.clear()
            self._source_down = False
            return
        entry = self._entries.get(model)
        self._inflight.pop(model, None)
        if entry is not None:
            entry.fresh_until = -math.inf
            entry.outdated = True
            self._prefetch(model)

    def revalidate(self, model: str | None = None) -> None:
        """The config may have changed: refresh in the background, serving the cached route
        meanwhile (as when its TTL runs out)."""
        entries = self._entries.items() if model is None else [(model, self._entries.get(model))]
        for name, entry in list(entries):
            if entry is not None and not entry.outdated:
                entry.fresh_until = -math.inf
                self._prefetch(name)

    def _prefetch(self, model: str) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # called outside a loop: the next call fetches
            return
        self._start_fetch(model)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        self._inflight.clear()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _start_fetch(self, model: str) -> asyncio.Task[Route]:
        """The model's one fetch in flight, started if there is none."""
        task = self._inflight.get(model)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._fetch(model))
            self._inflight[model] = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return task

    async def _refresh(self, model: str, entry: _Entry | None) -> Route:
        task = self._start_fetch(model)
        if self._source_down:
            # Known down: answer now; the fetch above refreshes the entry if the source is back.
            return entry.route if entry is not None else self._default_route(model)
        # Shielded: a cancelled caller must not cancel the fetch other callers wait on.
        return await asyncio.shield(task)

    async def _fetch(self, model: str) -> Route:
        me = asyncio.current_task()
        try:
            try:
                config = await self.source.get(model)
            except ConfigSourceUnavailable as error:
                return self._on_unavailable(model, error, me)
            self._source_down = False
            if config is None or not config.enabled:
                log.info(
                    "no_backend_config_found",
                    model=model,
                    reason="none" if config is None else "disabled",
                )
                route = self._default_route(model)
            else:
                route = self._make_route(config, False)
            self._store(model, _Entry(route, self._clock() + self._ttl, True), me)
            return route
        finally:
            if self._inflight.get(model) is me:
                del self._inflight[model]

    def _on_unavailable(
        self, model: str, error: ConfigSourceUnavailable, me: asyncio.Task[Route] | None
    ) -> Route:
        now = self._clock()
        self._source_down = True
        known = self._entries.get(model)
        if known is not None:
            route, from_source = known.route, known.from_source
        else:
            route, from_source = self._default_route(model), False
        log.warning(
            "failed_to_fetch_backend_config",
            model=model,
            error=str(error),
            serving="stale" if from_source else "default",
            retry_in_s=self._retry_seconds,
        )
        self._store(model, _Entry(route, now + self._retry_seconds, from_source), me)
        return route

    def _store(self, model: str, entry: _Entry, me: asyncio.Task[Route] | None) -> None:
        # An invalidate() during the fetch unregistered it: its answer may predate the change.
        if self._inflight.get(model) is me:
            entries = self._entries
            if model not in entries and len(entries) >= self._max_entries:
                del entries[next(iter(entries))]  # the oldest: it is fetched again if asked
            entries[model] = entry

    def _default_route(self, model: str) -> Route:
        return self._make_route(self._default_config(model), True)
