"""LLMRouter: send each generate/chat call to the backend configured for its model.

The router composes small parts: a RouteCache (config lookups), a BreakerBoard (endpoint
health), a StatsReporter (batched metrics) and a LoopScope (the pooled HTTP session). It
resolves the route; RequestFlow (router/flow.py) tries its attempts in order and
router/outcomes.py records how the request ended.

`get_llm_router()` is the one process-wide router (the only module-level mutable state);
explicit `LLMRouter(...)` instances are independent of it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Any

import aiohttp
import structlog

from llm_backends import state
from llm_backends.logs import configure_logging_unless_configured
from llm_backends.router.breaker import BreakerBoard, BreakerState
from llm_backends.router.cache import RouteCache
from llm_backends.router.config_source import ConfigSource, HttpConfigSource, default_config
from llm_backends.router.embeddings import (
    EmbeddingRequest,
    EmbedInput,
    EmbedResult,
    embed_routed,
    embedding_request,
)
from llm_backends.router.fallback import Route, plan_route
from llm_backends.router.fleet import FleetBoard
from llm_backends.router.fleet_flow import FleetFlow
from llm_backends.router.flow import RequestFlow
from llm_backends.router.follow import ChangeFollower
from llm_backends.router.health import HealthMonitor
from llm_backends.router.pool import LoopScope
from llm_backends.router.requests import Stop, library_request
from llm_backends.router.stats import HttpStatsSink, ModelStats, StatsReporter, StatsSink
from llm_backends.router.streaming import RoutedStream
from llm_backends.router.types import BackendConfig, CompletionRequest, Result
from llm_backends.settings import Settings

log = structlog.get_logger("llm_backends.router")

#: Messages as a caller gives them: OpenAI's shape or Ollama's (see router.messages).
Messages = Sequence[Mapping[str, Any]]


class _Default:
    """Marks "argument not given" where None is a meaningful value."""


_DEFAULT_SINK = _Default()


class LLMRouter:
    """Routes calls per model name; one instance serves one event loop at a time.

    Library mode (no arguments) asks the Admin API for configs and reports stats to it. A
    gateway passes `config_source=` and `stats_sink=` objects over its own store instead.
    """

    def __init__(
        self,
        admin_url: str | None = None,
        cache_ttl: float | None = None,
        *,
        settings: Settings | None = None,
        config_source: ConfigSource | None = None,
        stats_sink: StatsSink | _Default | None = _DEFAULT_SINK,
        ollama_url: str | None = None,
        admin_token: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        config_retry_seconds: float = 5.0,
        max_connections: int = 512,
    ) -> None:
        """`cache_ttl`, `admin_url`, `ollama_url`, `admin_token` default to the settings.

        `stats_sink=None` disables reporting; left out, library mode reports over HTTP when
        an Admin API token is configured. `clock` drives the cache TTL and breaker cooldowns.
        """
        settings = settings or Settings()
        self.settings = settings
        self.admin_url = (admin_url or settings.admin_api_url).rstrip("/")
        ollama_urls = tuple(
            u.strip().rstrip("/") for u in (ollama_url or "").split(",") if u.strip()
        )
        ollama_urls = ollama_urls or settings.ollama_urls
        #: The default Ollama servers (OLLAMA_URL, comma-separated); `auto` falls back to the
        #: first, models without a config are discovered on any of them (router/fleet.py).
        self.ollama_urls = ollama_urls
        self.ollama_url = ollama_urls[0]
        self._connect_timeout = settings.llm_router_connect_timeout
        self._max_connections = max_connections
        self._scope: LoopScope | None = None

        # Library mode: ADMIN_API_TOKEN, else the local token file; sent with config
        # lookups (a token with llm_backends:secrets also gets backends' api_key) and stats.
        token = admin_token if admin_token is not None else state.admin_token(settings)
        source = config_source or HttpConfigSource(
            self.admin_url, self._session, timeout=settings.llm_router_fetch_timeout, token=token
        )
        self._cache = RouteCache(
            source,
            make_route=self._make_route,
            default_config=self._default_config,
            ttl=settings.llm_router_cache_ttl if cache_ttl is None else cache_ttl,
            retry_seconds=config_retry_seconds,
            clock=clock,
        )
        # Library mode follows the Admin API's change feed (started in the loop on first use).
        self._follower = (
            ChangeFollower(
                self.admin_url, self._session, self._cache,
                fetch_timeout=settings.llm_router_fetch_timeout,
            )
            if config_source is None and settings.llm_router_follow_changes
            else None
        )  # fmt: skip
        self._breakers = BreakerBoard(
            threshold=settings.breaker_failure_threshold,
            cooldown=settings.breaker_cooldown_seconds,
            clock=clock,
        )
        # Fleet (#11): servers per model, probes, limits, fallbacks; see router/fleet.py.
        self.fleet = FleetBoard(
            HealthMonitor(
                self._session,
                interval=settings.health_check_interval,
                timeout=settings.health_check_timeout,
                defaults=[(url, "ollama") for url in ollama_urls],
            ),
            self._breakers,
            queue_max=settings.queue_max_waiting,
            queue_timeout=settings.queue_timeout_seconds,
            affinity=settings.conversation_affinity,
        )
        if isinstance(stats_sink, _Default):
            stats_sink = self._library_sink(token)
        self._stats = (
            StatsReporter(stats_sink, interval=settings.metrics_report_interval)
            if stats_sink is not None
            else None
        )
        flow = RequestFlow(
            settings=settings,
            cache=self._cache,
            breakers=self._breakers,
            fleet_flow=FleetFlow(self.fleet, self._cache.get),
            stats=self._stats,
            scope=self._current_scope,
        )
        # Bound once: a request costs the same lookups as when these were methods here.
        self._complete = flow.complete
        self._stream = flow.stream

    # -- public API ---------------------------------------------------------------------
    #
    # Every method takes the same optional features as keyword arguments (`tools=`,
    # `tool_choice=`, `response_format=` or Ollama's `format=`, `images=`, `think=` or
    # `reasoning_effort=`, `top_p=`, `seed=`, ..., `options=` (Ollama's), `keep_alive=`,
    # `suffix=`, `n=`, `logprobs=`, `top_logprobs=`): see `router.requests.build_request`.

    async def generate(
        self,
        model: str,
        prompt: str,
        temperature: float | None = None,
        max_tokens: int | None = None,
        *,
        system: str | None = None,
        stop: Stop = None,
        **features: Any,
    ) -> dict[str, Any]:
        """Complete `prompt`; the dict has response, backend, model, done, prompt_tokens,
        completion_tokens, latency_ms, fallback_from, endpoint, finish_reason, tokens_per_sec,
        tool_calls (OpenAI's shape), reasoning, max_tokens_capped (and choices when n > 1).
        """
        request = library_request(prompt, None, temperature, max_tokens, system, stop, features)
        return (await self.complete(model, request)).as_dict()

    async def chat(
        self,
        model: str,
        messages: Messages,
        temperature: float | None = None,
        max_tokens: int | None = None,
        *,
        system: str | None = None,
        stop: Stop = None,
        **features: Any,
    ) -> dict[str, Any]:
        """Answer a chat (messages in OpenAI's or Ollama's shape); same dict as `generate`."""
        request = library_request(None, messages, temperature, max_tokens, system, stop, features)
        return (await self.complete(model, request)).as_dict()

    async def generate_result(
        self,
        model: str,
        prompt: str,
        temperature: float | None = None,
        max_tokens: int | None = None,
        *,
        system: str | None = None,
        stop: Stop = None,
        **features: Any,
    ) -> Result:
        """`generate` as a typed Result (what a gateway uses)."""
        request = library_request(prompt, None, temperature, max_tokens, system, stop, features)
        return await self.complete(model, request)

    async def chat_result(
        self,
        model: str,
        messages: Messages,
        temperature: float | None = None,
        max_tokens: int | None = None,
        *,
        system: str | None = None,
        stop: Stop = None,
        **features: Any,
    ) -> Result:
        """`chat` as a typed Result."""
        request = library_request(None, messages, temperature, max_tokens, system, stop, features)
        return await self.complete(model, request)

    async def complete(self, model: str, request: CompletionRequest) -> Result:
        """Answer one typed request (see `router.requests.build_request` to make one)."""
        route = self._cache.fresh(model) or await self._cache.get(model)
        return await self._complete(model, route, request)

    async def stream(
        self,
        model: str,
        prompt: str,
        temperature: float | None = None,
        max_tokens: int | None = None,
        *,
        system: str | None = None,
        stop: Stop = None,
        **features: Any,
    ) -> AsyncIterator[str]:
        """Text chunks of a completion as they arrive."""
        chunks = self.stream_chunks(
            model, prompt, temperature, max_tokens, system=system, stop=stop, **features
        )
        async with aclosing(chunks):
            async for chunk in chunks:
                if chunk.text:
                    yield chunk.text

    async def stream_chat(
        self,
        model: str,
        messages: Messages,
        temperature: float | None = None,
        max_tokens: int | None = None,
        *,
        system: str | None = None,
        stop: Stop = None,
        **features: Any,
    ) -> AsyncIterator[str]:
        """Text chunks of a chat answer as they arrive."""
        chunks = self.stream_chat_chunks(
            model, messages, temperature, max_tokens, system=system, stop=stop, **features
        )
        async with aclosing(chunks):
            async for chunk in chunks:
                if chunk.text:
                    yield chunk.text

    def stream_chunks(
        self,
        model: str,
        prompt: str,
        temperature: float | None = None,
        max_tokens: int | None = None,
        *,
        system: str | None = None,
        stop: Stop = None,
        **features: Any,
    ) -> RoutedStream:
        """`Chunk`s (the last one has done=True and usage); see RoutedStream for `.backend`.
        Chunks also carry `reasoning` and `tool_calls` (ToolCallDelta) pieces."""
        request = library_request(prompt, None, temperature, max_tokens, system, stop, features)
        return self.stream_request(model, request)

    def stream_chat_chunks(
        self,
        model: str,
        messages: Messages,
        temperature: float | None = None,
        max_tokens: int | None = None,
        *,
        system: str | None = None,
        stop: Stop = None,
        **features: Any,
    ) -> RoutedStream:
        """`stream_chunks` for chat messages."""
        request = library_request(None, messages, temperature, max_tokens, system, stop, features)
        return self.stream_request(model, request)

    def stream_request(self, model: str, request: CompletionRequest) -> RoutedStream:
        """Stream one typed request."""
        handle = RoutedStream(model)
        return handle.attach(self._stream(handle, request))

    async def resolve(self, model: str) -> BackendConfig:
        """The effective config of `model` (the default Ollama config when it has none)."""
        return (await self._cache.get(model)).config

    def has_config(self, model: str) -> bool:
        """Whether `model` routes by an enabled config of its own, as last looked up (no
        lookup): False for the default Ollama route and for a model never asked for."""
        route = self._cache.peek(model)
        return route is not None and not route.is_default

    def invalidate(self, model: str | None = None) -> None:
        """Re-fetch the config of `model` (or of every model) on its next call."""
        self._cache.invalidate(model)

    def breaker_states(self) -> dict[str, BreakerState]:
        """endpoint -> "closed" | "open" | "half_open", for every endpoint called so far."""
        return self._breakers.states()

    def pending_stats(self) -> list[ModelStats]:
        """Counts recorded but not yet reported (empty when reporting is off)."""
        return self._stats.pending() if self._stats is not None else []

    async def flush_stats(self) -> bool:
        """Report pending stats now; False when the sink failed (counts are kept)."""
        return await self._stats.flush() if self._stats is not None else True

    async def close(self) -> None:
        """Report pending stats and close the HTTP pool. The router stays usable."""
        await self.fleet.monitor.close()
        if self._follower is not None:
            await self._follower.stop()
        await self._cache.close()
        if self._stats is not None:
            await self._stats.close()
        scope, self._scope = self._scope, None
        if scope is not None and scope.loop is asyncio.get_running_loop():
            await scope.close()

    async def __aenter__(self) -> LLMRouter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def embed(self, model: str, input: EmbedInput, **options: Any) -> EmbedResult:
        """Embeddings of `input` (a text, texts, or token ids) from `model`'s backend;
        `options`: dimensions, truncate, keep_alive, options. See router.embeddings."""
        return await self.embed_request(model, embedding_request(input, **options))

    async def embed_request(self, model: str, request: EmbeddingRequest) -> EmbedResult:
        """`embed` with a typed request (what a gateway uses)."""
        route = self._cache.fresh(model) or await self._cache.get(model)
        scope = self._current_scope()
        return await embed_routed(model, route, request, scope, self._breakers, self._stats)

    # -- wiring -------------------------------------------------------------------------

    def _current_scope(self) -> LoopScope:
        """The session and backends of the running loop, made on first use in that loop."""
        scope = self._scope
        # The usual call: the scope's loop is running, in this thread, so it is the running
        # loop. (Asking asyncio costs a getpid(2) per call on Python 3.11: ~1 µs of a library
        # call on the bench VM, measured.)
        if (
            scope is not None
            and scope.thread == threading.get_ident()
            and scope.loop.is_running()
            and not scope.closed
        ):
            return scope
        loop = asyncio.get_running_loop()
        if scope is None or scope.loop is not loop or scope.closed:
            scope = LoopScope(
                loop,
                connect_timeout=self._connect_timeout,
                max_connections=self._max_connections,
                max_response_bytes=self.settings.max_backend_response_bytes,
                on_loop_end=self._on_loop_end,
            )
            self._scope = scope
            if self._follower is not None:
                self._follower.start(loop)
            if self._stats is not None:
                self._stats.detach()  # a timer of a previous loop will never fire
        return scope

    def _session(self) -> aiohttp.ClientSession:
        return self._current_scope().session

    async def _on_loop_end(self) -> None:
        if self._stats is not None:
            await self._stats.close()

    def _make_route(self, config: BackendConfig, is_default: bool) -> Route:
        return self.fleet.equip(plan_route(config, self.ollama_url, is_default=is_default))

    def _default_config(self, model: str) -> BackendConfig:
        settings = self.settings
        return default_config(
            model,
            ollama_url=self.ollama_url,
            max_tokens=settings.default_max_tokens,
            temperature=settings.default_temperature,
            timeout_seconds=settings.default_timeout_seconds,
        )

    def _library_sink(self, token: str | None) -> StatsSink | None:
        if not token:
            log.info(
                "llm_stats_reporting_disabled",
                reason="ADMIN_API_TOKEN is not set and there is no token file",
                token_file=str(self.settings.token_file),
                admin_url=self.admin_url,
            )
            return None
        return HttpStatsSink(
            self.admin_url, token, self._session, timeout=self.settings.llm_router_fetch_timeout
        )


# The documented process-wide router: the only module-level mutable state of the package.
_router: LLMRouter | None = None
_router_lock = threading.Lock()


def get_llm_router() -> LLMRouter:
    """The process-wide LLMRouter, created on first call from the settings (thread-safe).

    If the application has not configured structlog by then, the router's log events are
    written as llm-backends' JSON lines (LOG_LEVEL, LOG_JSON, LOG_FLUSH_INTERVAL).
    """
    global _router
    router = _router
    if router is None:
        with _router_lock:
            if _router is None:
                settings = Settings()
                configure_logging_unless_configured(
                    settings.log_level, settings.log_json, settings.log_flush_interval
                )
                _router = LLMRouter(settings=settings)
            router = _router
    return router
