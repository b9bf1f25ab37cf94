"""The request flow of LLMRouter: run one request over a resolved route and end it.

A whole answer (`complete`) or a stream (`stream`) walks its route's attempts in order behind
each endpoint's circuit breaker; fallback happens only before the first byte. A route with a
fleet (several servers, limits, fallback models) is handed to FleetFlow (router/fleet_flow.py)
with the same breaker-guarded call. How a request ends is router/outcomes.py.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable
from typing import Any, NoReturn

import structlog

from llm_backends.router.backends import backend_capabilities, backend_classes
from llm_backends.router.breaker import BreakerBoard, CircuitBreaker, CircuitOpen
from llm_backends.router.cache import RouteCache
from llm_backends.router.capabilities import capable_attempts
from llm_backends.router.errors import (
    InvalidBackendResponse,
    LLMRouterError,
    StreamInterrupted,
)
from llm_backends.router.explain import circuit_open_reason
from llm_backends.router.fallback import Attempt, Route, falls_back, is_health_failure
from llm_backends.router.fleet_flow import FleetFlow, HeldStream, Outcome
from llm_backends.router.outcomes import capped, failed, finish, succeeded
from llm_backends.router.pool import LoopScope
from llm_backends.router.stats import StatsReporter
from llm_backends.router.streaming import RoutedStream
from llm_backends.router.types import Chunk, Completion, CompletionRequest, Result
from llm_backends.settings import Settings

log = structlog.get_logger("llm_backends.router")


class RequestFlow:
    """Runs requests over the router's parts; LLMRouter makes one and keeps its bound methods.

    `scope` is the router's "session and backends of the running loop" (made on first use).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        cache: RouteCache,
        breakers: BreakerBoard,
        fleet_flow: FleetFlow,
        stats: StatsReporter | None,
        scope: Callable[[], LoopScope],
    ) -> None:
        self._settings = settings
        self._cache = cache
        self._breakers = breakers
        self._fleet_flow = fleet_flow
        self._stats = stats
        self._scope = scope

    async def complete(self, model: str, route: Route, request: CompletionRequest) -> Result:
        """A whole answer from the first attempt that gives one."""
        if route.fleet is not None:
            return await self._complete_fleet(model, route, request)
        scope = self._scope()
        # bind(): the proxy's cheap path to its logger (see outcomes.finish).
        log.bind().debug("llm_request_started", model=model, backend_type=route.config.backend_type)
        started = time.perf_counter()
        attempts = (
            self._attempts(model, route, request, stream=False, started=started)
            if request.rich
            else route.attempts  # plain text: every attempt can answer (no call to decide)
        )
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
                failure = failed(self._stats, model, error, first_error, started, route)
                if failure is error:
                    raise
                raise failure from error
            return succeeded(
                self._stats, model, route, attempt, completion, first_error, started, request
            )
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _complete_fleet(self, model: str, route: Route, request: CompletionRequest) -> Result:
        """Several servers, limits or fallbacks (router/fleet_flow.py); same outcome handling."""
        scope = self._scope()
        started = time.perf_counter()
        self._attempts(model, route, request, stream=False, started=started)  # refusals
        try:
            outcome = await self._fleet_flow.run(
                model, route, request, lambda a: self._call(scope, model, a, request)
            )
        except LLMRouterError as error:
            raise failed(self._stats, model, error, None, started) from None
        if outcome.slot is not None:
            outcome.slot.release()
        return succeeded(
            self._stats,
            model,
            route,
            outcome.attempt,
            outcome.value,
            outcome.first_error,
            started,
            request,
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
            # Backend.answer only adds the n > 1 fan-out: a plain call skips its frame.
            if request.n <= 1:
                completion = await backend.complete(attempt.config, request)
            else:
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

    async def stream(
        self, handle: RoutedStream, request: CompletionRequest
    ) -> AsyncGenerator[Chunk, None]:
        """The chunks of one stream; `handle` learns who answered and the final chunk."""
        model = handle.model
        route = self._cache.fresh(model) or await self._cache.get(model)
        handle.max_tokens_capped = capped(route.config, request)
        scope = self._scope()
        log.bind().debug(  # bind(): the proxy's cheap path to its logger (see outcomes.finish)
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
            raise failed(self._stats, model, interrupted, None, started, route) from error
        finally:
            await chunks.aclose()
            if not ended:
                # The caller stopped early (its client went away): a request, not a failure.
                log.debug("llm_stream_abandoned", model=model, backend=attempt.kind)
                if self._stats is not None:
                    latency_ms = (time.perf_counter() - started) * 1000.0
                    self._stats.record(model, latency_ms, None, False, attempt.endpoint)
        handle.final = final
        finish(
            self._stats,
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
                failure = failed(self._stats, model, error, first_error, started, route)
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
            raise failed(self._stats, model, error, None, started) from None
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
                limit=self._settings.max_fanout_calls,
                stream=stream,
            )
        except LLMRouterError as error:
            raise failed(self._stats, model, error, None, started) from None


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
