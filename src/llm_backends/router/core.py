"""LLMRouter: send each generate/chat call to the backend configured for its model.

The router composes small parts: a RouteCache (config lookups), a BreakerBoard (endpoint
health), a StatsReporter (batched metrics) and a LoopScope (the pooled HTTP session). It owns
only the request flow: resolve the route, try its attempts in order, record the outcome.

`get_llm_router()` is the one process-wide router (the only module-level mutable state);
explicit `LLMRouter(...)` instances are independent of it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Any, NoReturn

import aiohttp
import structlog

from llm_backends import state
from llm_backends.logs import configure_logging_unless_configured
from llm_backends.router.backends import backend_capabilities, backend_classes
from llm_backends.router.breaker import BreakerBoard, BreakerState, CircuitBreaker, CircuitOpen
from llm_backends.router.cache import RouteCache
from llm_backends.router.capabilities import capable_attempts
from llm_backends.router.config_source import ConfigSource, HttpConfigSource, default_config
from llm_backends.router.embeddings import (
    EmbeddingRequest,
    EmbedInput,
    EmbedResult,
    embed_routed,
    embedding_request,
)
from llm_backends.router.errors import (
    InvalidBackendResponse,
    LLMRouterError,
    StreamInterrupted,
)
from llm_backends.router.explain import circuit_open_reason, on_default_route
from llm_backends.router.fallback import (
    Attempt,
    Route,
    after_fallback,
    falls_back,
    is_health_failure,
    plan_route,
)
from llm_backends.router.fleet import FleetBoard
from llm_backends.router.fleet_flow import FleetFlow, HeldStream, Outcome
from llm_backends.router.follow import ChangeFollower
from llm_backends.router.health import HealthMonitor
from llm_backends.router.pool import LoopScope
from llm_backends.router.requests import Stop, build_request
from llm_backends.router.stats import HttpStatsSink, ModelStats, StatsReporter, StatsSink
from llm_backends.router.streaming import RoutedStream
from llm_backends.router.types import (
    BackendConfig,
    Chunk,
    Completion,
    CompletionRequest,
    Result,
)
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
        self._fleet_flow = FleetFlow(self.fleet, self._cache.get)
        if isinstance(stats_sink, _Default):
            stats_sink = self._library_sink(token)
        self._stats = (
            StatsReporter(stats_sink, interval=settings.metrics_report_interval)
            if stats_sink is not None
            else None
        )

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
        result = await self.generate_result(
            model, prompt, temperature, max_tokens, system=system, stop=stop, **features
        )
        return result.as_dict()

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
        result = await self.chat_result(
            model, messages, temperature, max_tokens, system=system, stop=stop, **features
        )
        return result.as_dict()

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
        request = build_request(
            prompt=prompt,
            temperature=temperature,
            max_tokens=max_tokens,
            system=system,
            stop=stop,
            **features,
        )
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
        request = build_request(
            messages=messages,
            temperature=temperature,
            max_tokens=max_tokens,
            system=system,
            stop=stop,
            **features,
        )
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
        request = build_request(
            prompt=prompt,
            temperature=temperature,
            max_tokens=max_tokens,
            system=system,
            stop=stop,
            **features,
        )
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
        request = build_request(
            messages=messages,
            temperature=temperature,
            max_tokens=max_tokens,
            system=system,
            stop=stop,
            **features,
        )
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

    # -- request flow -------------------------------------------------------------------

    async def _complete(self, model: str, route: Route, request: CompletionRequest) -> Result:
        if route.fleet is not None:
            return await self._complete_fleet(model, route, request)
        scope = self._current_scope()
        log.debug("llm_request_started", model=model, backend_type=route.config.backend_type)
        started = time.perf_counter()
        attempts = self._attempts(model, route, request, stream=False, started=started)
        last = len(attempts) - 1
        first_error: LLMRouterError | None = None
        for index, attempt in enumerate(attempts):
            try:
                completion = await self._call(scope, model, attempt, request)
            except LLMRouterError as error:
                if index < last and falls_back(error):
                    first_error = first_error or error
                    _log_fallback(model, attempt, attempts[index + 1], error)
                    continue
                failure = self._failed(model, error, first_error, started, route)
                if failure is error:
                    raise
                raise failure from error
            return self._succeeded(model, route, attempt, completion, first_error, started, request)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _complete_fleet(self, model: str, route: Route, request: CompletionRequest) -> Result:
        """Several servers, limits or fallbacks (router/fleet_flow.py); same outcome handling."""
        scope = self._current_scope()
        started = time.perf_counter()
        self._attempts(model, route, request, stream=False, started=started)  # refusals
        try:
            outcome = await self._fleet_flow.run(
                model, route, request, lambda a: self._call(scope, model, a, request)
            )
        except LLMRouterError as error:
            raise self._failed(model, error, None, started) from None
        if outcome.slot is not None:
            outcome.slot.release()
        return self._succeeded(
            model, route, outcome.attempt, outcome.value, outcome.first_error, started, request
        )

    async def _call(
        self, scope: LoopScope, model: str, attempt: Attempt, request: CompletionRequest
    ) -> Completion:
        breaker = self._breakers.get(attempt.endpoint)
        backend = scope.backend(attempt.kind) or _unknown_backend(model, attempt)
        if not breaker.allow():
            raise _circuit_open(model, attempt, breaker)
        judged = False
        try:
            completion = await backend.answer(attempt.config, request)
            judged = True
        except LLMRouterError as error:
            judged = True
            _judge(breaker, error)
            raise
        finally:
            if not judged:  # cancelled: free the half-open probe slot (no-op otherwise)
                breaker.release()
        breaker.record_success()
        return completion

    async def _stream(
        self, handle: RoutedStream, request: CompletionRequest
    ) -> AsyncGenerator[Chunk, None]:
        model = handle.model
        route = self._cache.fresh(model) or await self._cache.get(model)
        handle.max_tokens_capped = _capped(route.config, request)
        scope = self._current_scope()
        log.debug(
            "llm_request_started", model=model, backend_type=route.config.backend_type, stream=True
        )
        started = time.perf_counter()
        attempt, chunks, first, first_error = await self._open_stream(
            scope, model, route, request, started
        )
        handle.backend = attempt.kind
        handle.endpoint = attempt.endpoint
        handle.fallback_from = first_error.backend if first_error is not None else None
        final = first if first.done else None
        ended = False
        try:
            yield first
            async for chunk in chunks:
                if chunk.done:
                    final = chunk
                yield chunk
            ended = True
        except LLMRouterError as error:
            ended = True
            # Text already reached the caller: another backend can't continue it.
            if is_health_failure(error):
                self._breakers.get(attempt.endpoint).record_failure(error.reason)
            interrupted = StreamInterrupted(
                f"stream interrupted after the first chunk: {error.reason}",
                model=model,
                backend=attempt.kind,
                endpoint=attempt.endpoint,
                status_code=error.status_code,
            )
            raise self._failed(model, interrupted, None, started, route) from error
        finally:
            await chunks.aclose()
            if not ended:
                # The caller stopped early (its client went away): a request, not a failure.
                log.debug("llm_stream_abandoned", model=model, backend=attempt.kind)
                if self._stats is not None:
                    latency_ms = (time.perf_counter() - started) * 1000.0
                    self._stats.record(model, latency_ms, None, False, attempt.endpoint)
        handle.final = final
        self._finish(
            model,
            route,
            attempt,
            time.perf_counter() - started,
            final.completion_tokens if final else None,
            final.tokens_per_sec if final else None,
            first_error,
            stream=True,
            capped=handle.max_tokens_capped,
        )

    async def _open_stream(
        self,
        scope: LoopScope,
        model: str,
        route: Route,
        request: CompletionRequest,
        started: float,
    ) -> tuple[Attempt, AsyncGenerator[Chunk, None], Chunk, LLMRouterError | None]:
        """Walk the route until a backend yields its first chunk: fallback happens only here."""
        if route.fleet is not None:
            return await self._open_fleet_stream(scope, model, route, request, started)
        attempts = self._attempts(model, route, request, stream=True, started=started)
        last = len(attempts) - 1
        first_error: LLMRouterError | None = None
        for index, attempt in enumerate(attempts):
            try:
                chunks, first = await self._first_chunk(scope, model, attempt, request)
            except LLMRouterError as error:
                if index < last and falls_back(error):
                    first_error = first_error or error
                    _log_fallback(model, attempt, attempts[index + 1], error)
                    continue
                failure = self._failed(model, error, first_error, started, route)
                if failure is error:
                    raise
                raise failure from error
            return attempt, chunks, first, first_error
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _open_fleet_stream(
        self,
        scope: LoopScope,
        model: str,
        route: Route,
        request: CompletionRequest,
        started: float,
    ) -> tuple[Attempt, Any, Chunk, LLMRouterError | None]:
        """A fleet's first chunk; the server's place is held until the stream ends."""
        self._attempts(model, route, request, stream=True, started=started)  # refusals
        try:
            outcome: Outcome[tuple[Any, Chunk]] = await self._fleet_flow.run(
                model, route, request, lambda a: self._first_chunk(scope, model, a, request)
            )
        except LLMRouterError as error:
            raise self._failed(model, error, None, started) from None
        chunks, first = outcome.value
        return outcome.attempt, HeldStream(chunks, outcome.slot), first, outcome.first_error

    async def _first_chunk(
        self, scope: LoopScope, model: str, attempt: Attempt, request: CompletionRequest
    ) -> tuple[AsyncGenerator[Chunk, None], Chunk]:
        breaker = self._breakers.get(attempt.endpoint)
        backend = scope.backend(attempt.kind) or _unknown_backend(model, attempt)
        if not breaker.allow():
            raise _circuit_open(model, attempt, breaker)
        chunks: Any = backend.stream_answer(attempt.config, request)
        started = False
        try:
            try:
                first = await anext(chunks)
            except StopAsyncIteration:
                raise InvalidBackendResponse(
                    "stream ended before its first chunk",
                    model=model,
                    backend=attempt.kind,
                    endpoint=attempt.endpoint,
                ) from None
            started = True
        except LLMRouterError as error:
            _judge(breaker, error)
            raise
        finally:
            if not started:
                breaker.release()  # a cancelled half-open probe frees its slot (else no-op)
                await chunks.aclose()
        breaker.record_success()
        return chunks, first

    # -- outcomes -----------------------------------------------------------------------

    def _succeeded(
        self,
        model: str,
        route: Route,
        attempt: Attempt,
        completion: Completion,
        first_error: LLMRouterError | None,
        started: float,
        request: CompletionRequest,
    ) -> Result:
        elapsed = time.perf_counter() - started
        capped = _capped(route.config, request)
        tokens_per_sec = self._finish(
            model,
            route,
            attempt,
            elapsed,
            completion.completion_tokens,
            completion.tokens_per_sec,
            first_error,
            stream=False,
            capped=capped,
        )
        return Result(
            response=completion.text,
            backend=attempt.kind,
            model=model,
            done=True,
            finish_reason=completion.finish_reason,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            latency_ms=elapsed * 1000.0,
            tokens_per_sec=tokens_per_sec,
            fallback_from=first_error.backend if first_error is not None else None,
            endpoint=attempt.endpoint,
            tool_calls=completion.tool_calls,
            reasoning=completion.reasoning,
            logprobs=completion.logprobs,
            choices=completion.choices,
            max_tokens_capped=capped,
        )

    def _attempts(
        self,
        model: str,
        route: Route,
        request: CompletionRequest,
        *,
        stream: bool,
        started: float,
    ) -> tuple[Attempt, ...]:
        """The route's attempts able to honour the request (all of them for plain text)."""
        if not request.rich:
            return route.attempts
        try:
            return capable_attempts(
                model,
                route.attempts,
                backend_capabilities(),
                request,
                limit=self.settings.max_fanout_calls,
                stream=stream,
            )
        except LLMRouterError as error:
            raise self._failed(model, error, None, started) from None

    def _finish(
        self,
        model: str,
        route: Route,
        attempt: Attempt,
        elapsed: float,
        completion_tokens: int | None,
        tokens_per_sec: float | None,
        first_error: LLMRouterError | None,
        *,
        stream: bool,
        capped: int | None = None,
    ) -> float | None:
        """Log and count a success; returns tokens/s (the backend's own, else wall-clock).

        One INFO line per request, written when it ends (like an access log), so it carries
        the outcome: a second line at the start cost ~15 µs a request and said less.
        """
        if tokens_per_sec is None and completion_tokens and elapsed > 0:
            tokens_per_sec = completion_tokens / elapsed
        latency_ms = elapsed * 1000.0
        log.info(
            "routing_llm_request",
            model=model,
            backend_type=route.config.backend_type,
            backend=attempt.kind,
            endpoint=attempt.endpoint,
            fallback_from=first_error.backend if first_error is not None else None,
            stream=stream,
            duration_ms=round(latency_ms, 3),
            tokens_per_sec=None if tokens_per_sec is None else round(tokens_per_sec, 1),
            max_tokens_capped=capped,
            default_route=route.is_default,
        )
        if self._stats is not None and not route.is_default:
            self._stats.record(model, latency_ms, tokens_per_sec, False, attempt.endpoint)
        return tokens_per_sec

    def _failed(
        self,
        model: str,
        error: LLMRouterError,
        first_error: LLMRouterError | None,
        started: float,
        route: Route | None = None,
    ) -> LLMRouterError:
        """Log and count a failure; the error to raise names every backend tried, and says
        so when the model had no enabled config (the default Ollama was used)."""
        if first_error is not None:
            error = after_fallback(error, first_error)
        default = route is not None and route.is_default
        if default:
            error = on_default_route(error, model, error.endpoint)
        latency_ms = (time.perf_counter() - started) * 1000.0
        log.warning(
            "llm_request_failed",
            model=model,
            backend=error.backend,
            endpoint=error.endpoint,
            error=str(error),
            error_type=type(error).__name__,
            default_route=default,
        )
        # A model without a config has no row to count in (and clients choose the names).
        if self._stats is not None and not default:
            self._stats.record(model, latency_ms, None, True, error.endpoint)
        return error

    # -- wiring -------------------------------------------------------------------------

    def _current_scope(self) -> LoopScope:
        """The session and backends of the running loop, made on first use in that loop."""
        scope = self._scope
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


def _capped(config: BackendConfig, request: CompletionRequest) -> int | None:
    """The config's max_tokens when the request asked for more (and was sent with it)."""
    asked = request.max_tokens
    return config.max_tokens if asked is not None and asked > config.max_tokens else None


def _judge(breaker: CircuitBreaker, error: LLMRouterError) -> None:
    """A 404/400 still proves the server is up; only health failures count against it."""
    if is_health_failure(error):
        breaker.record_failure(error.reason)
    else:
        breaker.record_success()


def _circuit_open(model: str, attempt: Attempt, breaker: CircuitBreaker) -> CircuitOpen:
    return CircuitOpen(
        circuit_open_reason(breaker.failures, breaker.last_failure, breaker.retry_in),
        model=model,
        backend=attempt.kind,
        endpoint=attempt.endpoint,
    )


def _unknown_backend(model: str, attempt: Attempt) -> NoReturn:
    raise LLMRouterError(
        f"no backend module speaks backend_type {attempt.kind!r} "
        f"(known: {', '.join(sorted(backend_classes()))})",
        model=model,
        backend=attempt.kind,
        endpoint=attempt.endpoint,
    )


def _log_fallback(model: str, failed: Attempt, next_: Attempt, error: LLMRouterError) -> None:
    if isinstance(error, CircuitOpen):
        # Expected while the breaker is open: one line per request would drown the logs.
        log.debug("backend_circuit_open_skipping", model=model, backend=failed.kind)
        return
    log.warning(
        f"{failed.kind}_failed_falling_back_to_{next_.kind}",
        model=model,
        error=str(error),
        error_type=type(error).__name__,
        endpoint=failed.endpoint,
        fallback_endpoint=next_.endpoint,
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
