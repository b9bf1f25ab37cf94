"""The request flow of a fleet route: pick a server, wait for a place, call it; on a health
failure before the first byte try the next server, all within the config's timeout_seconds
as one deadline; when every server failed, the config's fallback models in order.

The router hands in `start(attempt)`: its breaker-guarded call of one server (a whole answer,
or a stream's first chunk). What comes back names the server that answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog

from llm_backends.router.errors import (
    BackendTimeout,
    BackendUnavailable,
    LLMRouterError,
    ModelNotFound,
)
from llm_backends.router.fallback import (
    Attempt,
    Route,
    after_fallback,
    falls_back,
    is_health_failure,
)
from llm_backends.router.fleet import MAX_FALLBACKS, Fleet, FleetBoard, ServerSlot
from llm_backends.router.types import Chunk, CompletionRequest

log = structlog.get_logger("llm_backends.router")

T = TypeVar("T")


@dataclass(slots=True)
class Outcome(Generic[T]):
    """Who answered, what it answered, the place it holds, and the first failure if any."""

    attempt: Attempt
    value: T
    slot: ServerSlot | None
    first_error: LLMRouterError | None
    #: The fallback model that answered, when it was not the requested one.
    fallback_model: str | None = None


class FleetFlow:
    """Runs one request over a route with a fleet (see the module docstring)."""

    def __init__(self, board: FleetBoard, routes: Callable[[str], Awaitable[Route]]) -> None:
        self._board = board
        self._routes = routes

    async def run(
        self,
        model: str,
        route: Route,
        request: CompletionRequest,
        start: Callable[[Attempt], Awaitable[T]],
    ) -> Outcome[T]:
        failures: list[LLMRouterError] = []
        try:
            return await self._route(model, route, request, start, failures)
        except LLMRouterError as error:
            if not (is_health_failure(error) and route.config.fallbacks):
                raise _combined(error, failures) from None
            last = error
        visited = {model}
        pending = list(route.config.fallbacks)
        while pending and len(visited) <= MAX_FALLBACKS:
            name = pending.pop(0)
            if name in visited:
                continue
            visited.add(name)
            target = await self._routes(name)
            if target.is_default:  # deleted or disabled since: not a fallback any more
                log.info("fallback_model_skipped", model=model, fallback=name, reason="no config")
                continue
            log.warning("fleet_falling_back_to_model", model=model, fallback=name, error=str(last))
            try:
                outcome = await self._route(name, target, request, start, failures)
            except LLMRouterError as error:
                if not is_health_failure(error):
                    raise _combined(error, failures) from None
                last = error
                pending.extend(target.config.fallbacks)
                continue
            outcome.fallback_model = name
            return outcome
        raise _combined(last, failures) from None

    async def _route(
        self,
        model: str,
        route: Route,
        request: CompletionRequest,
        start: Callable[[Attempt], Awaitable[T]],
        failures: list[LLMRouterError],
    ) -> Outcome[T]:
        fleet = route.fleet
        if fleet is None:
            return await self._plain(route, start, failures)
        monitor = self._board.monitor
        monitor.ensure_running()
        if fleet.discover:
            await monitor.first_round()
        loop = asyncio.get_running_loop()
        timeout = route.config.timeout_seconds
        deadline = loop.time() + timeout
        tried: set[str] = set()
        key = self._board.key_of(fleet, request)
        while True:
            candidates = fleet.candidates(model, tried)
            if not candidates:
                raise _none_left(model, route, fleet, tried, failures)
            member = fleet.pick(candidates, key)
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise BackendTimeout(
                    f"no answer within timeout_seconds={timeout:g} "
                    f"(servers tried: {', '.join(sorted(tried)) or 'none'})",
                    model=model,
                    backend=member.attempt.kind,
                    endpoint=member.slot.url,
                )
            slot = member.slot
            wait = min(self._board.queue_timeout, remaining)
            await slot.acquire(wait, self._board.busy(model, member))
            attempt = member.attempt if remaining >= timeout else member.with_timeout(remaining)
            try:
                value = await start(attempt)
            except LLMRouterError as error:
                slot.release()
                if not is_health_failure(error):
                    raise
                failures.append(error)
                tried.add(slot.url)
                log.warning(
                    "fleet_server_failed_trying_next",
                    model=model,
                    endpoint=slot.url,
                    error=str(error),
                    error_type=type(error).__name__,
                )
                continue
            except BaseException:
                slot.release()
                raise
            return Outcome(attempt, value, slot, failures[0] if failures else None)

    async def _plain(
        self,
        route: Route,
        start: Callable[[Attempt], Awaitable[T]],
        failures: list[LLMRouterError],
    ) -> Outcome[T]:
        """A fallback model without a fleet: its attempts in order, as the router does."""
        attempts = route.attempts
        for index, attempt in enumerate(attempts):
            try:
                value = await start(attempt)
            except LLMRouterError as error:
                if index < len(attempts) - 1 and falls_back(error):
                    failures.append(error)
                    continue
                raise
            return Outcome(attempt, value, None, failures[0] if failures else None)
        raise AssertionError("unreachable: the last attempt returns or raises")


def _combined(error: LLMRouterError, failures: list[LLMRouterError]) -> LLMRouterError:
    first = failures[0] if failures else None
    if first is None or first is error:
        return error
    return after_fallback(error, first)


def _none_left(
    model: str, route: Route, fleet: Fleet, tried: set[str], failures: list[LLMRouterError]
) -> LLMRouterError:
    """Why no server is left: the last failure, or what the probes and breakers say."""
    kind = route.config.backend_type
    urls = [m.slot.url for m in fleet.members]
    if tried and failures:
        return failures[-1]
    if fleet.discover:
        up = [m for m in fleet.members if m.slot.health.healthy]
        if not any(m.slot.health.serves(model) for m in up):
            return ModelNotFound(
                f"model {model!r} not found on any default server (asked: {', '.join(urls)})",
                model=model,
                backend=kind,
                endpoint=urls[0],
                status_code=404,
            )
    states = "; ".join(
        f"{m.slot.url}: "
        + (
            f"unhealthy ({m.slot.health.last_error})"
            if not m.slot.health.healthy
            else "circuit open"
        )
        for m in fleet.members
    )
    return BackendUnavailable(
        f"no healthy server: {states}", model=model, backend=kind, endpoint=urls[0]
    )


class HeldStream:
    """A stream's chunks that give the server's place back when the stream ends or is
    closed, even if it was never iterated (an async generator's `finally` would not run)."""

    __slots__ = ("_chunks", "_slot")

    def __init__(self, chunks: Any, slot: ServerSlot | None) -> None:
        self._chunks = chunks
        self._slot = slot

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self

    async def __anext__(self) -> Chunk:
        try:
            chunk: Chunk = await self._chunks.__anext__()
        except BaseException:
            self._release()
            raise
        return chunk

    async def aclose(self) -> None:
        self._release()
        await self._chunks.aclose()

    def _release(self) -> None:
        slot, self._slot = self._slot, None
        if slot is not None:
            slot.release()
