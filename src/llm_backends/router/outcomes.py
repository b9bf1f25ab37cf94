"""How a routed request ends: the one log line per request and its stats.

Plain functions over the router's StatsReporter (None when reporting is off), shared by the
whole-answer and the stream flow (router/flow.py) so both end the same way.
"""

from __future__ import annotations

import time

import structlog

from llm_backends.router.errors import LLMRouterError
from llm_backends.router.explain import on_default_route
from llm_backends.router.fallback import Attempt, Route, after_fallback
from llm_backends.router.stats import StatsReporter
from llm_backends.router.types import BackendConfig, Completion, CompletionRequest, Result

log = structlog.get_logger("llm_backends.router")


def capped(config: BackendConfig, request: CompletionRequest) -> int | None:
    """The config's max_tokens when the request asked for more (and was sent with it)."""
    asked = request.max_tokens
    return config.max_tokens if asked is not None and asked > config.max_tokens else None


def succeeded(
    stats: StatsReporter | None,
    model: str,
    route: Route,
    attempt: Attempt,
    completion: Completion,
    first_error: LLMRouterError | None,
    started: float,
    request: CompletionRequest,
) -> Result:
    """Log and count a whole answer; the Result the caller gets."""
    elapsed = time.perf_counter() - started
    max_tokens_capped = capped(route.config, request)
    tokens_per_sec = finish(
        stats,
        model,
        route,
        attempt,
        elapsed,
        completion.completion_tokens,
        completion.tokens_per_sec,
        first_error,
        False,  # stream (positional: keywords cost on every call)
        max_tokens_capped,
    )
    # Positional, and the optional fields set only when present: keyword arguments cost
    # ~0.7 µs on a 17-field init, on every call.
    result = Result(
        completion.text,  # response
        attempt.kind,  # backend
        model,
        True,  # done
        completion.finish_reason,
        completion.prompt_tokens,
        completion.completion_tokens,
        elapsed * 1000.0,  # latency_ms
        tokens_per_sec,
        first_error.backend if first_error is not None else None,  # fallback_from
        attempt.endpoint,
    )
    if completion.tool_calls:
        result.tool_calls = completion.tool_calls
    if completion.reasoning is not None:
        result.reasoning = completion.reasoning
    if completion.logprobs is not None:
        result.logprobs = completion.logprobs
    if completion.choices:
        result.choices = completion.choices
    if max_tokens_capped is not None:
        result.max_tokens_capped = max_tokens_capped
    return result


def finish(
    stats: StatsReporter | None,
    model: str,
    route: Route,
    attempt: Attempt,
    elapsed: float,
    completion_tokens: int | None,
    tokens_per_sec: float | None,
    first_error: LLMRouterError | None,
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
    # `log.bind()`, not `log.info`: on structlog's lazy proxy an attribute lookup fails first
    # (a formatted AttributeError, ~0.5 µs) before its __getattr__ binds; bind() is that step.
    log.bind().info(
        "routing_llm_request",
        model=model,
        backend_type=route.config.backend_type,
        backend=attempt.kind,
        endpoint=attempt.endpoint,
        fallback_from=first_error.backend if first_error is not None else None,
        stream=stream,
        # Rounded half up by hand: round(x, n) takes ~0.25 µs (a correctly rounded dtoa).
        duration_ms=int(latency_ms * 1000.0 + 0.5) / 1000.0,
        tokens_per_sec=None if tokens_per_sec is None else int(tokens_per_sec * 10.0 + 0.5) / 10.0,
        max_tokens_capped=capped,
        default_route=route.is_default,
    )
    if stats is not None and not route.is_default:
        stats.record(model, latency_ms, tokens_per_sec, False, attempt.endpoint)
    return tokens_per_sec


def failed(
    stats: StatsReporter | None,
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
    if stats is not None and not default:
        stats.record(model, latency_ms, None, True, error.endpoint)
    return error
