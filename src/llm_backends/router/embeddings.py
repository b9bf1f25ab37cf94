"""Embeddings, routed per model like generation: the same config lookup, route, breakers,
stats and access-log line, but their own request and result types.

`LLMRouter.embed()` (library) and `LLMRouter.embed_request()` (gateway) are thin wrappers over
`embed_routed()`. Only backends whose class says `embeds = True` are tried: for `auto` that
skips MLX (mlx_lm.server has no embeddings) and asks Ollama; a config whose only backend cannot
embed is a 400 naming it, without a network call.
"""

from __future__ import annotations

import base64
import sys
import time
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import structlog

from llm_backends.router.breaker import BreakerBoard, CircuitOpen
from llm_backends.router.errors import BackendRequestError, LLMRouterError
from llm_backends.router.explain import on_default_route
from llm_backends.router.fallback import (
    Attempt,
    Route,
    after_fallback,
    falls_back,
    is_health_failure,
)

if TYPE_CHECKING:
    from llm_backends.router.pool import LoopScope
    from llm_backends.router.stats import StatsReporter

log = structlog.get_logger("llm_backends.router")

#: What `router.embed(model, input)` takes: a text, texts, or token ids (one list or several).
EmbedInput = str | Sequence[str] | Sequence[int] | Sequence[Sequence[int]]


@dataclass(frozen=True, slots=True)
class Passthrough:
    """The client's own body, for a backend speaking the client's protocol: it is sent with
    only `model` replaced, and the backend's answer is returned as it came (`EmbedResult.raw`)."""

    protocol: Literal["openai", "ollama"]
    body: Mapping[str, Any]
    #: Ollama's legacy `/api/embeddings` (`prompt` -> `embedding`), not `/api/embed`.
    legacy: bool = False


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    """What to embed. Exactly one of `texts` and `tokens` is set."""

    texts: tuple[str, ...] | None = None
    tokens: tuple[tuple[int, ...], ...] | None = None
    dimensions: int | None = None
    #: Ollama's `truncate` (None: the server's default).
    truncate: bool | None = None
    #: Ollama's `keep_alive` (a duration string or seconds); other servers keep their model.
    keep_alive: str | float | None = None
    #: Ollama's model options, null values already removed.
    options: Mapping[str, Any] | None = None
    passthrough: Passthrough | None = None
    #: The gateways this request already passed through (loop protection, see hops).
    hops: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        return len(self.texts if self.texts is not None else self.tokens or ())


@dataclass(slots=True)
class BackendEmbeddings:
    """One backend's answer: the vectors (None when only `raw` was kept) and its counters."""

    vectors: list[list[float]] | None
    prompt_tokens: int | None = None
    total_duration_ns: int | None = None
    load_duration_ns: int | None = None
    #: The backend's own JSON answer to a passthrough request.
    raw: dict[str, Any] | None = None


@dataclass(slots=True)
class EmbedResult:
    """What `router.embed()` returns; `embeddings` has one vector per input, in order."""

    model: str
    backend: str
    endpoint: str
    prompt_tokens: int | None
    latency_ms: float
    fallback_from: str | None = None
    total_duration_ns: int | None = None
    load_duration_ns: int | None = None
    raw: dict[str, Any] | None = None
    _vectors: list[list[float]] | None = field(default=None, repr=False)

    @property
    def embeddings(self) -> list[list[float]]:
        """The vectors as floats (decoded from a passed-through answer on first use)."""
        if self._vectors is None:
            self._vectors = vectors_of_raw(self.raw or {})
        return self._vectors


def embedding_request(
    input: EmbedInput,
    *,
    dimensions: int | None = None,
    truncate: bool | None = None,
    keep_alive: str | float | None = None,
    options: Mapping[str, Any] | None = None,
) -> EmbeddingRequest:
    """The library's keyword arguments as a request; a bad `input` is a ValueError."""
    texts, tokens = split_input(input)
    cleaned = {k: v for k, v in (options or {}).items() if v is not None} or None
    return EmbeddingRequest(texts, tokens, dimensions, truncate, keep_alive, cleaned)


def split_input(
    value: object,
) -> tuple[tuple[str, ...] | None, tuple[tuple[int, ...], ...] | None]:
    """`input` as texts or as token arrays (OpenAI: `[int]` is one array, `[[int]]` several)."""
    if isinstance(value, str):
        return (value,), None
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        items = list(value)
        if all(isinstance(item, str) for item in items):
            return tuple(items), None
        if items and all(_is_int(item) for item in items):
            return None, (tuple(items),)
        if items and all(
            isinstance(item, Sequence)
            and not isinstance(item, str)
            and item
            and all(_is_int(i) for i in item)
            for item in items
        ):
            return None, tuple(tuple(item) for item in items)
    raise ValueError(
        "input: must be a string, a list of strings, or token ids (a list of integers or of "
        "lists of integers)"
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def vectors_of_raw(raw: Mapping[str, Any]) -> list[list[float]]:
    """The vectors of an answer in any of the three protocols' shapes."""
    if "data" in raw:
        items = sorted(raw["data"], key=lambda item: item.get("index", 0))
        return [decode_vector(item["embedding"]) for item in items]
    if "embeddings" in raw:
        return [list(vector) for vector in raw["embeddings"]]
    return [list(raw.get("embedding") or [])]


def decode_vector(value: object) -> list[float]:
    """A float list, or OpenAI's base64 of little-endian float32s."""
    if isinstance(value, str):
        values = array("f")
        values.frombytes(base64.b64decode(value))
        if sys.byteorder != "little":
            values.byteswap()
        return values.tolist()
    if isinstance(value, list):
        return value
    raise TypeError(f"an embedding is {type(value).__name__}")


def encode_base64(vector: Sequence[float]) -> str:
    """OpenAI's `encoding_format: "base64"`: the little-endian float32 bytes, base64."""
    values = array("f", vector)
    if sys.byteorder != "little":
        values.byteswap()
    return base64.b64encode(values.tobytes()).decode("ascii")


def unsupported(attempt: Attempt, model: str, why: str) -> BackendRequestError:
    return BackendRequestError(
        f"embeddings are not supported by backend {attempt.kind!r} ({why})",
        model=model,
        backend=attempt.kind,
        endpoint=attempt.endpoint,
    )


async def embed_routed(
    model: str,
    route: Route,
    request: EmbeddingRequest,
    scope: LoopScope,
    breakers: BreakerBoard,
    stats: StatsReporter | None,
) -> EmbedResult:
    """Try the route's embedding-capable attempts in order (fallback as for generation)."""
    started = time.perf_counter()
    # A model without a config has no row to count in (and clients choose the names), as
    # for generation: its calls are not recorded.
    counted = None if route.is_default else stats
    attempts = [a for a in route.attempts if _embeds(scope, a)]
    if not attempts:
        first = route.attempts[0]
        why = f"the {first.kind} server has no embeddings API"
        error: LLMRouterError = _explained(unsupported(first, model, why), model, route)
        _count_failure(model, error, started, counted)
        raise error
    first_error: LLMRouterError | None = None
    last = len(attempts) - 1
    for index, attempt in enumerate(attempts):
        try:
            answer = await _call(scope, breakers, model, attempt, request)
        except LLMRouterError as error:
            if index < last and falls_back(error):
                first_error = first_error or error
                continue
            failure = after_fallback(error, first_error) if first_error else error
            failure = _explained(failure, model, route)
            _count_failure(model, failure, started, counted)
            if failure is error:
                raise
            raise failure from error
        latency_ms = (time.perf_counter() - started) * 1000.0
        fallback_from = first_error.backend if first_error is not None else None
        log.bind().info(  # bind(): the proxy's cheap path to its logger (see outcomes.finish)
            "routing_llm_request",
            model=model,
            operation="embed",
            backend_type=route.config.backend_type,
            backend=attempt.kind,
            endpoint=attempt.endpoint,
            fallback_from=fallback_from,
            inputs=request.count,
            duration_ms=round(latency_ms, 3),
            default_route=route.is_default,
        )
        if counted is not None:
            counted.record(model, latency_ms, None, False)
        return EmbedResult(
            model=model,
            backend=attempt.kind,
            endpoint=attempt.endpoint,
            prompt_tokens=answer.prompt_tokens,
            latency_ms=latency_ms,
            fallback_from=fallback_from,
            total_duration_ns=answer.total_duration_ns,
            load_duration_ns=answer.load_duration_ns,
            raw=answer.raw,
            _vectors=answer.vectors,
        )
    raise AssertionError("unreachable: the last attempt returns or raises")


def _explained(error: LLMRouterError, model: str, route: Route) -> LLMRouterError:
    """On the default route, the error says the model has no enabled config (as generation)."""
    return on_default_route(error, model, error.endpoint) if route.is_default else error


def _embeds(scope: LoopScope, attempt: Attempt) -> bool:
    backend = scope.backend(attempt.kind)
    return backend is not None and getattr(backend, "embeds", False)


async def _call(
    scope: LoopScope,
    breakers: BreakerBoard,
    model: str,
    attempt: Attempt,
    request: EmbeddingRequest,
) -> BackendEmbeddings:
    breaker = breakers.get(attempt.endpoint)
    backend: Any = scope.backend(attempt.kind)
    if not breaker.allow():
        raise CircuitOpen(
            f"circuit open after {breaker.failures} consecutive failures, "
            f"next probe in {breaker.retry_in:.1f}s",
            model=model,
            backend=attempt.kind,
            endpoint=attempt.endpoint,
        )
    judged = False
    try:
        answer: BackendEmbeddings = await backend.embed(attempt.config, request)
        judged = True
    except LLMRouterError as error:
        judged = True
        if is_health_failure(error):
            breaker.record_failure()
        else:
            breaker.record_success()
        raise
    finally:
        if not judged:
            breaker.release()
    breaker.record_success()
    return answer


def _count_failure(
    model: str, error: LLMRouterError, started: float, stats: StatsReporter | None
) -> None:
    latency_ms = (time.perf_counter() - started) * 1000.0
    log.warning(
        "llm_request_failed",
        model=model,
        operation="embed",
        backend=error.backend,
        endpoint=error.endpoint,
        error=str(error),
        error_type=type(error).__name__,
    )
    if stats is not None:
        stats.record(model, latency_ms, None, True)
