"""Prometheus metrics of the gateway, in a registry of its own (never the global one: several
apps may live in one process, e.g. in tests), with the standard process, platform and GC
collectors.

Model names come from clients and unknown ones still route (to the default Ollama), so a
client could otherwise grow the series (and the memory) without bound: the `model` label is a
configured model's name (one with an enabled config, at most `max_models` of them) or
"other". Every other label comes from a fixed set (backend types, the gateway's own status
and error codes, the protocol), so the number of series has a ceiling whatever clients send.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from llm_backends.gateway.errors import Protocol, error_code, redact
from llm_backends.router.errors import LLMRouterError

#: Seconds: from an instant mock to a long generation.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
#: Seconds to a stream's first token: loading a model can take a minute, a warm one ms.
FIRST_TOKEN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
OTHER_MODEL = "other"
#: Breaker state -> gauge value: 1 refuses requests, 0.5 lets one probe through, 0 is healthy.
BREAKER_VALUES = {"open": 1.0, "half_open": 0.5, "closed": 0.0}


class BreakerCollector(Collector):
    """`llm_gateway_breaker_open{endpoint}`, read from the router at scrape time."""

    def __init__(self, states: Callable[[], Mapping[str, str]]) -> None:
        self._states = states

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(
            "llm_gateway_breaker_open",
            "Circuit breaker per backend endpoint: 1 open, 0.5 half-open (probing), 0 closed.",
            labels=["endpoint"],
        )
        for endpoint, state in sorted(self._states().items()):
            gauge.add_metric([redact(endpoint)], BREAKER_VALUES.get(state, 0.0))
        yield gauge


class GatewayMetrics:
    """Counters updated on the request path (a label lookup and an add each)."""

    def __init__(
        self,
        breaker_states: Callable[[], Mapping[str, str]],
        *,
        configured: Callable[[str], bool] = lambda _model: False,
        max_models: int = 500,
    ) -> None:
        """`configured(model)`: whether the model has an enabled config (so its own label)."""
        self.registry = CollectorRegistry(auto_describe=True)
        self._configured = configured
        self._max_models = max_models
        self._models: set[str] = set()
        #: (model label, backend, status, protocol) -> (counter, histogram) children:
        #: `labels()` validates and locks on every call, a dict lookup does not.
        self._children: dict[tuple[str, str, str, str], tuple[Any, Any]] = {}
        #: Also told of every finished request (model, status, seconds): the page's history.
        self.observer: Callable[[str, str, float | None], None] | None = None
        #: (model label, backend) -> (prompt tokens, completion tokens, first token) children.
        self._usage: dict[tuple[str, str], tuple[Any, Any, Any]] = {}
        self._requests = Counter(
            "llm_gateway_requests_total",
            "Gateway generation requests by model, answering backend, HTTP status and protocol.",
            ["model", "backend", "status", "protocol"],
            registry=self.registry,
        )
        self._duration = Histogram(
            "llm_gateway_request_duration_seconds",
            "Time from request to the end of the answer (a stream's last byte), routed requests.",
            ["model", "backend"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._fallbacks = Counter(
            "llm_gateway_fallbacks_total",
            "Requests answered (or failed) by a fallback backend after the first one failed.",
            ["model", "from_backend", "to_backend"],
            registry=self.registry,
        )
        self._upstream_errors = Counter(
            "llm_gateway_upstream_errors_total",
            "Backend failures returned to clients, by error code (e.g. backend_timeout).",
            ["model", "backend", "error"],
            registry=self.registry,
        )
        self._prompt_tokens = Counter(
            "llm_gateway_prompt_tokens",
            "Prompt tokens of answered requests, as the backend reported them.",
            ["model", "backend"],
            registry=self.registry,
        )
        self._completion_tokens = Counter(
            "llm_gateway_completion_tokens",
            "Completion (generated) tokens of answered requests, as the backend reported them.",
            ["model", "backend"],
            registry=self.registry,
        )
        self._first_token = Histogram(
            "llm_gateway_time_to_first_token_seconds",
            "Streams: time from the request to the first chunk from the backend.",
            ["model", "backend"],
            buckets=FIRST_TOKEN_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(BreakerCollector(breaker_states))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def model_label(self, model: str) -> str:
        """The model's own name if it is configured (and under the cap), else "other";
        "" (the request never named one) stays "". A name, once given, is kept."""
        if model in self._models or not model:
            return model
        if len(self._models) >= self._max_models or not self._configured(model):
            return OTHER_MODEL
        self._models.add(model)
        return model

    def request(
        self,
        protocol: Protocol,
        model: str,
        backend: str,
        status: str,
        seconds: float | None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
    ) -> None:
        """One finished request; `seconds` is None when it never reached the router. The
        token counts, when the backend reported them, are added to the token counters."""
        label = self.model_label(model)
        key = (label, backend, status, protocol.value)
        children = self._children.get(key)
        if children is None:
            children = (
                self._requests.labels(label, backend, status, protocol.value),
                self._duration.labels(label, backend),
            )
            self._children[key] = children
        children[0].inc()
        if seconds is not None:
            children[1].observe(seconds)
        if self.observer is not None:
            self.observer(model, status, seconds)
        if prompt_tokens or completion_tokens:
            usage = self._usage_of(label, backend)
            if prompt_tokens:
                usage[0].inc(prompt_tokens)
            if completion_tokens:
                usage[1].inc(completion_tokens)

    def first_token(self, model: str, backend: str, seconds: float) -> None:
        """A stream's first chunk arrived `seconds` after its request."""
        self._usage_of(self.model_label(model), backend)[2].observe(seconds)

    def _usage_of(self, label: str, backend: str) -> tuple[Any, Any, Any]:
        key = (label, backend)
        usage = self._usage.get(key)
        if usage is None:
            usage = (
                self._prompt_tokens.labels(label, backend),
                self._completion_tokens.labels(label, backend),
                self._first_token.labels(label, backend),
            )
            self._usage[key] = usage
        return usage

    def fallback(self, model: str, from_backend: str, to_backend: str) -> None:
        self._fallbacks.labels(self.model_label(model), from_backend, to_backend).inc()

    def upstream_error(self, model: str, backend: str, error: str) -> None:
        self._upstream_errors.labels(self.model_label(model), backend, error).inc()

    def routed_error(self, model: str, error: LLMRouterError) -> None:
        """A router error before any byte was sent: count it, and its fallback if it had one."""
        self.upstream_error(model, error.backend, error_code(error))
        first = getattr(error, "fallback_from", None)
        if first:
            self.fallback(model, first, error.backend)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
