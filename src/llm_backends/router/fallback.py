"""Which backends a config tries, in order, and which failures move on to the next one.

A route is computed once per fetched config (not per request), so the hot path only walks a
tuple. `auto` is the one multi-step policy: MLX at the config's endpoint, then Ollama at
`OLLAMA_URL` with the model's own name.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from llm_backends.router.backends import AUTO
from llm_backends.router.errors import (
    BackendTimeout,
    BackendUnavailable,
    InvalidBackendResponse,
    LLMRouterError,
    ModelNotFound,
)
from llm_backends.router.types import BackendConfig

if TYPE_CHECKING:
    from llm_backends.router.fleet import Fleet

MLX = "mlx"
OLLAMA = "ollama"

#: The server is sick or unreachable: counts against its circuit breaker.
HEALTH_FAILURES: tuple[type[LLMRouterError], ...] = (
    BackendUnavailable,
    BackendTimeout,
    InvalidBackendResponse,
)

#: Worth trying the next backend of a route for. A 400 (BackendRequestError) is not: the
#: request itself is wrong and would be rejected again.
FALLBACK_FAILURES: tuple[type[LLMRouterError], ...] = (*HEALTH_FAILURES, ModelNotFound)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One backend call of a route: which wire protocol, with which (derived) config."""

    kind: str
    config: BackendConfig
    #: The config's endpoint_url: a field, not a property, because a request reads it several
    #: times (breaker, log line, stats, Result).
    endpoint: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoint", self.config.endpoint_url)


@dataclass(frozen=True, slots=True)
class Route:
    """The effective config of a model and the attempts it makes."""

    config: BackendConfig
    attempts: tuple[Attempt, ...]
    #: True when no (enabled) config was found and the default Ollama config is used.
    is_default: bool = False
    #: Several servers, limits or fallbacks (router/fleet.py); None: the plain path.
    fleet: Fleet | None = None


def normalize(config: BackendConfig) -> BackendConfig:
    """Endpoints are roots: drop a trailing slash so breakers key on one spelling."""
    endpoint = config.endpoint_url.rstrip("/")
    if endpoint == config.endpoint_url:
        return config
    return replace(config, endpoint_url=endpoint)


def plan_route(config: BackendConfig, ollama_url: str, *, is_default: bool = False) -> Route:
    """The attempts for one config. Called when a config is fetched, never per request."""
    config = normalize(config)
    if config.backend_type != AUTO:
        return Route(config, (Attempt(config.backend_type, config),), is_default)
    mlx = replace(config, backend_type=MLX)
    # Ollama knows the model by its own name; backend_model is the MLX server's name for it.
    # The config's credential is the MLX server's: never sent to the default Ollama.
    ollama = replace(
        config,
        backend_type=OLLAMA,
        endpoint_url=ollama_url.rstrip("/"),
        backend_model=None,
        auth_headers=(),
    )
    return Route(config, (Attempt(MLX, mlx), Attempt(OLLAMA, ollama)), is_default)


def falls_back(error: LLMRouterError) -> bool:
    return isinstance(error, FALLBACK_FAILURES)


def is_health_failure(error: BaseException) -> bool:
    return isinstance(error, HEALTH_FAILURES)


def after_fallback(error: LLMRouterError, first: LLMRouterError) -> LLMRouterError:
    """The last backend's error, of its own type, whose message also names the first failure."""
    combined = type(error)(
        f"{error.reason}; tried after {first.backend} at {first.endpoint} failed: {first.reason}",
        model=error.model,
        backend=error.backend,
        endpoint=error.endpoint,
        status_code=error.status_code,
        retry_after=error.retry_after,
    )
    combined.fallback_from = first.backend  # type: ignore[attr-defined]
    return combined
