"""Plain data passed between the router, its config sources and the wire-protocol backends."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

FinishReason = Literal["stop", "length"]


class ChatMessage(TypedDict):
    role: str
    content: str


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """One inference server of a model's fleet (see router/fleet.py)."""

    url: str
    weight: int = 1
    #: Most of this model's requests in flight at this server at once; None: no limit.
    max_concurrency: int | None = None

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> ServerSpec:
        limit = data.get("max_concurrency")
        return cls(
            url=str(data["url"]).rstrip("/"),
            weight=int(data.get("weight") or 1),
            max_concurrency=None if limit is None else int(limit),
        )


@dataclass(frozen=True, slots=True)
class BackendConfig:
    """One row of `llm_backends` as the router needs it (validated once, when fetched)."""

    model_name: str
    backend_type: str
    endpoint_url: str
    backend_model: str | None = None
    enabled: bool = True
    max_tokens: int = 2048
    temperature_default: float = 0.7
    timeout_seconds: float = 60.0
    id: int | None = None
    #: Fleet (issue #11): servers beyond endpoint_url, whose own weight/limit are the next two.
    endpoints: tuple[ServerSpec, ...] = ()
    weight: int = 1
    max_concurrency: int | None = None
    #: Other model names tried in order when every server failed with a health failure.
    fallbacks: tuple[str, ...] = ()

    @property
    def servers(self) -> tuple[ServerSpec, ...]:
        """endpoint_url first (with the top-level weight and limit), then `endpoints`."""
        first = ServerSpec(self.endpoint_url.rstrip("/"), self.weight, self.max_concurrency)
        return (first, *self.endpoints)
    #: The backend's credential as ready-made request headers (from the config's api_key);
    #: kept out of repr so it can never reach a log line or an error message.
    auth_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> BackendConfig:
        """Build from an Admin API JSON object (extra keys are ignored)."""
        return cls(
            model_name=data["model_name"],
            backend_type=data["backend_type"],
            endpoint_url=data["endpoint_url"],
            backend_model=data.get("backend_model"),
            enabled=bool(data.get("enabled", True)),
            max_tokens=int(data.get("max_tokens") or 2048),
            temperature_default=float(
                data["temperature_default"] if data.get("temperature_default") is not None else 0.7
            ),
            timeout_seconds=float(data.get("timeout_seconds") or 60),
            id=data.get("id"),
            endpoints=tuple(ServerSpec.from_mapping(e) for e in data.get("endpoints") or ()),
            weight=int(data.get("weight") or 1),
            max_concurrency=(
                None if data.get("max_concurrency") is None else int(data["max_concurrency"])
            ),
            fallbacks=tuple(str(name) for name in data.get("fallbacks") or ()),
            auth_headers=credential_headers(data.get("api_key"), data.get("api_key_header")),
        )


def credential_headers(
    api_key: str | None, header: str | None = None
) -> tuple[tuple[str, str], ...]:
    """How a key is sent: `Authorization: Bearer <key>` (OpenAI-style servers, and the
    default for an auth proxy), or the bare key in the header a config names (`X-API-Key`)."""
    if not api_key:
        return ()
    if header is None or header.lower() == "authorization":
        return (("Authorization", f"Bearer {api_key}"),)
    return ((header, api_key),)


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    """What to ask a backend. Exactly one of `prompt` and `messages` is set.

    `temperature` and `max_tokens` are already resolved against the config defaults.
    """

    prompt: str | None = None
    messages: list[ChatMessage] | None = None
    system: str | None = None
    temperature: float = 0.7
    max_tokens: int = 2048
    stop: list[str] | None = None

    @property
    def is_chat(self) -> bool:
        return self.messages is not None


@dataclass(slots=True)
class Completion:
    """A whole answer from a backend."""

    text: str
    finish_reason: FinishReason = "stop"
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # Generation speed as measured by the backend itself (Ollama's eval_count/eval_duration).
    tokens_per_sec: float | None = None
    backend_model: str | None = None


@dataclass(slots=True)
class Chunk:
    """One piece of a streamed answer; the last one has `done=True` and the usage, if known."""

    text: str
    done: bool = False
    finish_reason: FinishReason | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tokens_per_sec: float | None = None


@dataclass(slots=True)
class Result:
    """What LLMRouter.generate/chat return, as a dict via `as_dict()`."""

    response: str
    backend: str
    model: str
    done: bool
    finish_reason: FinishReason
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float
    tokens_per_sec: float | None
    fallback_from: str | None
    endpoint: str
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "response": self.response,
            "backend": self.backend,
            "model": self.model,
            "done": self.done,
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "latency_ms": self.latency_ms,
            "tokens_per_sec": self.tokens_per_sec,
            "fallback_from": self.fallback_from,
            "endpoint": self.endpoint,
            **self.extra,
        }
