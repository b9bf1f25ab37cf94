"""Active health checks: every known server is probed in the background, so a dead one is
skipped before any request pays its timeout, and one that recovers is used again.

A probe is the cheapest call a server type has that also says which models it serves:
Ollama's `GET /api/tags`, `GET /v1/models` for the OpenAI-compatible servers (vLLM,
llama.cpp, mlx_lm.server). Refused, timed out, 5xx or garbage marks the server unhealthy;
any other answer (even 401/404) proves it is up. The circuit breakers stay for what probes
miss (a server whose probe passes but whose generations fail).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import structlog

log = structlog.get_logger("llm_backends.router")

#: Which path probes a server of each backend type (the rest speak OpenAI's API).
PROBE_PATHS = {"ollama": "/api/tags"}
OPENAI_PROBE = "/v1/models"
#: Largest probe answer read (a model list); more is a garbage answer.
MAX_PROBE_BYTES = 4 * 1024 * 1024

#: (url, backend type) of every server to probe.
Target = tuple[str, str]


@dataclass(slots=True)
class ServerHealth:
    """What the probes know of one server URL (shared by every config naming it)."""

    url: str
    kind: str
    healthy: bool = True
    #: When `healthy` last changed (None until the first probe).
    since: datetime | None = None
    last_error: str | None = None
    probe_latency_ms: float | None = None
    models: tuple[str, ...] = ()
    probed: bool = False
    #: Set when this server's model list is known, i.e. it answered a probe with one.
    listed: bool = False
    _names: frozenset[str] = field(default_factory=frozenset)

    def serves(self, model: str) -> bool:
        """Ollama names without a tag mean `:latest`, as Ollama itself resolves them."""
        names = self._names
        return model in names or (":" not in model and f"{model}:latest" in names)

    def passed(self, latency_ms: float, models: tuple[str, ...] | None) -> None:
        if not self.healthy or not self.probed:
            if self.probed:
                log.info("backend_server_healthy", url=self.url)
            self.since = datetime.now(UTC)
        self.healthy, self.probed, self.probe_latency_ms = True, True, latency_ms
        if models is not None:
            self.models, self._names, self.listed = models, frozenset(models), True

    def failed(self, error: str) -> None:
        if self.healthy or not self.probed:
            log.warning("backend_server_unhealthy", url=self.url, error=error)
            self.since = datetime.now(UTC)
        self.healthy, self.probed, self.last_error = False, True, error

    def as_dict(self, in_flight: int) -> dict[str, Any]:
        return {
            "url": self.url,
            "healthy": self.healthy,
            "since": self.since.isoformat().replace("+00:00", "Z") if self.since else None,
            "last_error": self.last_error,
            "probe_latency_ms": self.probe_latency_ms,
            "in_flight": in_flight,
            "models": list(self.models),
        }


def parse_models(kind: str, body: bytes) -> tuple[str, ...]:
    """Model names of an /api/tags or /v1/models answer; ValueError when it is neither."""
    data = orjson.loads(body)
    if kind == "ollama":
        items, key = data["models"], "name"
    else:
        items, key = data["data"], "id"
    if not isinstance(items, list):
        raise ValueError("model list is not a list")
    return tuple(str(item[key]) for item in items)


class HealthMonitor:
    """Probes every target each `interval` seconds in one background task per event loop.

    `targets` is awaited each round (a gateway lists the enabled configs' servers); servers
    seen by `track()` (those of the routes built) and the default servers are always probed.
    """

    def __init__(
        self,
        session: Callable[[], aiohttp.ClientSession],
        *,
        interval: float,
        timeout: float,
        defaults: Iterable[Target] = (),
        targets: Callable[[], Awaitable[Iterable[Target]]] | None = None,
    ) -> None:
        self._session = session
        self.interval = interval
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self.servers: dict[str, ServerHealth] = {}
        self.defaults = tuple(self.track(url, kind).url for url, kind in defaults)
        self.targets = targets
        self._task: asyncio.Task[None] | None = None
        self._rounds = 0
        self._probing = False
        self._round_done: asyncio.Condition | None = None
        self._wake: asyncio.Event | None = None

    @property
    def rounds(self) -> int:
        """How many probe rounds have completed (tests wait on this, not on time)."""
        return self._rounds

    def track(self, url: str, kind: str) -> ServerHealth:
        """The health record of `url`, created (optimistically healthy) on first sight."""
        health = self.servers.get(url)
        if health is None:
            health = self.servers[url] = ServerHealth(url, kind)
        return health

    def ensure_running(self) -> None:
        """Start the probe loop in the running event loop unless it already runs there."""
        task = self._task
        loop = asyncio.get_running_loop()
        if task is not None and not task.done() and task.get_loop() is loop:
            return
        self._round_done = asyncio.Condition()
        self._wake = asyncio.Event()
        self._task = loop.create_task(self._run(), name="llm-router-health-probes")

    async def next_round(self) -> None:
        """Start a probe round now (or after the running one) and wait until it completed."""
        self.ensure_running()
        assert self._round_done is not None and self._wake is not None
        self._wake.set()
        target = self._rounds + 2 if self._probing else self._rounds + 1
        async with self._round_done:
            await self._round_done.wait_for(lambda: self._rounds >= target)

    async def first_round(self) -> None:
        """Wait for the first round to complete (discovery needs the model lists)."""
        self.ensure_running()
        if self._rounds == 0:
            assert self._round_done is not None
            async with self._round_done:
                await self._round_done.wait_for(lambda: self._rounds >= 1)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def probe_all(self) -> None:
        """One round: every target, concurrently."""
        if self.targets is not None:
            try:
                for url, kind in await self.targets():
                    self.track(url, kind)
            except Exception as error:  # e.g. the database is down: probe what is known
                log.warning("health_probe_targets_failed", error=f"{type(error).__name__}")
        self._probing = True
        try:
            await asyncio.gather(*(self.probe(h) for h in list(self.servers.values())))
        finally:
            self._probing = False
        self._rounds += 1
        if self._round_done is not None:
            async with self._round_done:
                self._round_done.notify_all()

    async def probe(self, health: ServerHealth) -> None:
        url = health.url + PROBE_PATHS.get(health.kind, OPENAI_PROBE)
        started = time.perf_counter()
        try:
            async with self._session().get(url, timeout=self._timeout) as response:
                body = await response.content.read(MAX_PROBE_BYTES + 1)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            health.failed(f"probe GET {url}: {type(error).__name__}: {error}".rstrip(": "))
            return
        latency_ms = round((time.perf_counter() - started) * 1000.0, 3)
        if status >= 500:
            health.failed(f"probe GET {url}: HTTP {status}")
            return
        if status != 200:  # up, but it won't list its models to us (auth, old server)
            health.passed(latency_ms, None)
            return
        try:
            if len(body) > MAX_PROBE_BYTES:
                raise ValueError("answer too large")
            models = parse_models(health.kind, body)
        except (ValueError, KeyError, TypeError) as error:
            health.failed(f"probe GET {url}: not a model list ({error})")
            return
        health.passed(latency_ms, models)

    async def _run(self) -> None:
        while True:
            try:
                await self.probe_all()
            except Exception:  # a bug must not end probing for the process's lifetime
                log.exception("health_probe_round_failed")
            wake = self._wake
            assert wake is not None
            try:
                async with asyncio.timeout(self.interval):
                    await wake.wait()
            except TimeoutError:
                pass
            wake.clear()
