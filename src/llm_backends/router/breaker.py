"""Circuit breakers per backend endpoint, so a hung server costs one timeout, not one per request.

closed --N consecutive health failures--> open --cooldown--> half_open (one probe in flight)
half_open --probe succeeds--> closed;  half_open --probe fails--> open again.

Only health failures count (unavailable, timeout, invalid response); a 404 or 400 means the
server answered, which proves it is up. The clock is injected so tests need no sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

import structlog

from llm_backends.router.errors import BackendUnavailable

log = structlog.get_logger("llm_backends.router")

BreakerState = Literal["closed", "open", "half_open"]

CLOSED: BreakerState = "closed"
OPEN: BreakerState = "open"
HALF_OPEN: BreakerState = "half_open"


class CircuitOpen(BackendUnavailable):
    """Not sent: the endpoint's breaker is open. In `auto` this skips MLX instead of failing."""


class CircuitBreaker:
    """The health of one endpoint, as seen by this process."""

    __slots__ = (
        "_clock",
        "_cooldown",
        "_failures",
        "_last_failure",
        "_opened_at",
        "_probing",
        "_state",
        "_threshold",
        "endpoint",
    )

    def __init__(
        self,
        endpoint: str,
        *,
        threshold: int,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self._threshold = threshold
        self._cooldown = cooldown
        self._clock = clock
        self._state: BreakerState = CLOSED
        self._failures = 0
        self._last_failure: str | None = None
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        """The state a request arriving now would see (open turns half_open after cooldown)."""
        if self._state == OPEN and self._clock() >= self._opened_at + self._cooldown:
            return HALF_OPEN
        return self._state

    @property
    def failures(self) -> int:
        """Consecutive health failures so far."""
        return self._failures

    @property
    def last_failure(self) -> str | None:
        """What the last health failure was (the one that opened an open breaker)."""
        return self._last_failure

    @property
    def retry_in(self) -> float:
        """Seconds until an open breaker lets a probe through."""
        return max(0.0, self._opened_at + self._cooldown - self._clock())

    def allow(self) -> bool:
        """May a request go to this endpoint now? In half_open only the one probe may."""
        if self._state == CLOSED:
            return True
        if self._state == OPEN:
            if self._clock() < self._opened_at + self._cooldown:
                return False
            self._state = HALF_OPEN
            self._probing = False
        if self._probing:
            return False
        self._probing = True
        return True

    def record_success(self) -> None:
        if self._state != CLOSED:
            log.info("backend_circuit_closed", endpoint=self.endpoint)
            self._state = CLOSED
            self._probing = False
        self._failures = 0

    def record_failure(self, reason: str | None = None) -> None:
        """One more health failure; `reason` says what failed (kept for the open error)."""
        self._failures += 1
        if reason is not None:
            self._last_failure = reason
        if self._state == HALF_OPEN or (
            self._state == CLOSED and self._failures >= self._threshold
        ):
            self._open()

    def release(self) -> None:
        """A request let through ended without a verdict (cancelled): free the probe slot."""
        if self._state == HALF_OPEN:
            self._probing = False

    def _open(self) -> None:
        self._state = OPEN
        self._probing = False
        self._opened_at = self._clock()
        log.warning(
            "backend_circuit_opened",
            endpoint=self.endpoint,
            consecutive_failures=self._failures,
            last_failure=self._last_failure,
            cooldown_s=self._cooldown,
        )


class BreakerBoard:
    """One breaker per endpoint URL, created on first use."""

    def __init__(
        self,
        *,
        threshold: int,
        cooldown: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = threshold
        self._cooldown = cooldown
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}

    def get(self, endpoint: str) -> CircuitBreaker:
        breaker = self._breakers.get(endpoint)
        if breaker is None:
            breaker = self._breakers[endpoint] = CircuitBreaker(
                endpoint, threshold=self._threshold, cooldown=self._cooldown, clock=self._clock
            )
        return breaker

    def states(self) -> dict[str, BreakerState]:
        return {endpoint: breaker.state for endpoint, breaker in self._breakers.items()}
