"""Plain data passed between the router, its config sources and the wire-protocol backends.

One request type (`CompletionRequest`) and one answer type (`Completion` / `Chunk`, and the
caller-facing `Result`) carry every feature in a neutral form; each backend module turns them
into its wire protocol and back. Optional features are grouped so that a plain-text request
carries only `None`s and empty tuples: nothing to allocate or check on the common path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, Required, TypedDict

import orjson

FinishReason = Literal["stop", "length", "tool_calls"]
#: Which gateway protocol a client spoke (the passthrough carrier says so).
WireProtocol = Literal["openai", "ollama"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call of an assistant message. `arguments` is JSON text (OpenAI's form): a
    model's malformed arguments survive the trip; `parsed_arguments()` gives the object."""

    id: str
    name: str
    arguments: str = "{}"

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as an object (Ollama's form); malformed JSON becomes `{}`."""
        try:
            value = orjson.loads(self.arguments or "{}")
        except orjson.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}

    def openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call: `index` is its position in the answer (0, 1, ...);
    the first piece of a call has its `id` and `name`, later ones only more `arguments`."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class ChatMessage(TypedDict, total=False):
    """A chat message in the neutral form (Ollama's shape plus OpenAI's ids).

    `images` are base64 data (no `data:` prefix) or http(s) URLs; `tool_calls` are
    `ToolCall`s; a `tool` message names the call it answers (`tool_call_id`) and its tool
    (`tool_name`); `thinking` is an assistant's reasoning text.
    """

    role: Required[str]
    content: Required[str]
    images: NotRequired[list[str]]
    tool_calls: NotRequired[list[ToolCall]]
    tool_call_id: NotRequired[str]
    tool_name: NotRequired[str]
    thinking: NotRequired[str]


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """Structured output: any JSON object, or JSON matching `schema`."""

    type: Literal["json_object", "json_schema"]
    schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class Sampling:
    """Sampling options beyond temperature (None: the backend's default). `extra` holds
    Ollama options without an equivalent elsewhere (num_gpu, mirostat, ...)."""

    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    repeat_penalty: float | None = None
    num_ctx: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Passthrough:
    """The client's own request body, for a backend speaking the client's protocol: it
    forwards every field (unknown ones too), changing only what the gateway owns."""

    protocol: WireProtocol
    body: bytes


@dataclass(slots=True, eq=False)
class CompletionRequest:
    """What to ask a backend. Exactly one of `prompt` and `messages` is set. Treat it as
    immutable once built (not frozen only because a frozen init costs ~1.5 µs here).

    `temperature` and `max_tokens` None take the config's defaults; a `max_tokens` above the
    config's is capped to it (the config's value is a maximum).
    """

    prompt: str | None = None
    messages: list[ChatMessage] | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    #: Fill-in-the-middle: text after the completion (completions / generate only).
    suffix: str | None = None
    #: Images of a prompt (`generate`): base64 data or http(s) URLs.
    images: tuple[str, ...] = ()
    #: Function tools in OpenAI's shape ({"type": "function", "function": {...}}; Ollama's too).
    tools: tuple[dict[str, Any], ...] = ()
    #: "auto" | "none" | "required" | a tool's name; None: the backend's default.
    tool_choice: str | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    #: Reasoning: True/False, or a level ("low", "medium", "high").
    think: bool | str | None = None
    sampling: Sampling | None = None
    keep_alive: str | float | None = None
    n: int = 1
    logprobs: bool = False
    top_logprobs: int | None = None
    #: Instance ids of the gateways this request already went through (loop protection).
    hops: tuple[str, ...] = ()
    passthrough: Passthrough | None = None
    #: Set once by whoever builds the request: True when any optional feature is present.
    #: False lets backends and the router skip every feature check (the plain-text path).
    rich: bool = False
    #: Conversation id for fleet affinity (`session=`, `x-session-id`); not sent to backends.
    session: str | None = None

    @property
    def is_chat(self) -> bool:
        return self.messages is not None

    def effective_max_tokens(self, config: BackendConfig) -> int:
        """The request's limit, never above the config's maximum."""
        asked = self.max_tokens
        if asked is None or asked > config.max_tokens:
            return config.max_tokens
        return asked

    def effective_temperature(self, config: BackendConfig) -> float:
        return config.temperature_default if self.temperature is None else self.temperature


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


@dataclass(slots=True)
class Choice:
    """One alternative answer (n > 1); the first is also the Completion's own fields."""

    index: int
    text: str
    finish_reason: FinishReason = "stop"
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    #: OpenAI's chat shape: [{"token", "logprob", "bytes", "top_logprobs": [...]}, ...].
    logprobs: list[dict[str, Any]] | None = None


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
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    logprobs: list[dict[str, Any]] | None = None
    #: Every choice when the answer has more than one (n > 1), else empty.
    choices: tuple[Choice, ...] = ()


@dataclass(slots=True)
class Chunk:
    """One piece of a streamed answer; the last one has `done=True` and the usage, if known."""

    text: str
    done: bool = False
    finish_reason: FinishReason | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    tokens_per_sec: float | None = None
    reasoning: str | None = None
    tool_calls: tuple[ToolCallDelta, ...] = ()
    logprobs: list[dict[str, Any]] | None = None
    #: Which choice this piece belongs to (n > 1 streams).
    index: int = 0


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
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    logprobs: list[dict[str, Any]] | None = None
    choices: tuple[Choice, ...] = ()
    #: The config's max_tokens when the request asked for more and was capped to it.
    max_tokens_capped: int | None = None

    def as_dict(self) -> dict[str, Any]:
        data = {
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
            "tool_calls": [call.openai() for call in self.tool_calls] if self.tool_calls else [],
            "reasoning": self.reasoning,
            "max_tokens_capped": self.max_tokens_capped,
        }
        if self.extra:
            data.update(self.extra)
        if self.logprobs is not None:
            data["logprobs"] = self.logprobs
        if self.choices:
            data["choices"] = [
                {
                    "index": choice.index,
                    "response": choice.text,
                    "finish_reason": choice.finish_reason,
                    "tool_calls": [call.openai() for call in choice.tool_calls],
                    "reasoning": choice.reasoning,
                }
                for choice in self.choices
            ]
        return data
