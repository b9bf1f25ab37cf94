"""Request bodies of the gateway, validated straight from the raw bytes.

The models are strict (no "true" for true, no "1" for 1) and ignore unknown fields here
(a backend of the client's own protocol still receives them: the raw body is forwarded).
What a backend cannot honour is refused by the router (router.capabilities) with a 400
naming the field and the backend; what no backend can take (`functions`, `echo`) is refused
here, and the JSON schema says so too, so schemathesis agrees.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
)

from llm_backends.admin.schemas import ModelName
from llm_backends.gateway.errors import GatewayError, bad_request

#: Large enough for any real model, small enough to stay a 32-bit int on every backend.
MAX_TOKENS = 1_000_000


def _integral(value: object) -> object:
    """JSON Schema counts 5.0 as an integer; strict mode alone would not."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Integral = BeforeValidator(_integral)
#: Model names are checked as the Admin API checks them (`ModelName`): no control characters,
#: which a config could not have anyway and which (NUL) would break a PostgreSQL lookup.
MaxTokens = Annotated[int, Field(ge=1, le=MAX_TOKENS), Integral]
One = Annotated[Literal[1], Integral]
Temperature = Annotated[float, Field(ge=0.0, le=2.0)]
StopList = Annotated[list[str], Field(max_length=16)]
#: Features the router cannot pass on: only absent, null or empty is accepted.
Unsupported = Annotated[
    list[Any] | None,
    Field(max_length=0, description="Not supported by this gateway: leave it out or empty."),
]


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


# -- OpenAI -----------------------------------------------------------------------------

#: Messages stay plain JSON objects here: router.messages checks and converts them (both
#: protocols' shapes), naming the bad field; a schema per part would cost the plain path.
_MESSAGE_SCHEMA = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {
            "anyOf": [
                {"type": "string"},
                {"type": "null"},
                {"type": "array", "items": {"type": "object"}},
            ]
        },
        "images": {"type": "array", "items": {"type": "string"}},
        "tool_calls": {"type": "array", "items": {"type": "object"}},
        "tool_call_id": {"type": "string"},
        "tool_name": {"type": "string"},
    },
}
Messages = Annotated[
    list[dict[str, Any]],
    Field(min_length=1),
    WithJsonSchema({"type": "array", "minItems": 1, "items": _MESSAGE_SCHEMA}),
]
Objects = list[dict[str, Any]]
Penalty = Annotated[float, Field(ge=-2.0, le=2.0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
#: 64-bit, as vLLM bounds it (and orjson can encode).
Seed = Annotated[int, Field(ge=-(2**63), le=2**63 - 1), Integral]
Count = Annotated[int, Field(ge=1, le=128), Integral]
TopLogprobs = Annotated[int, Field(ge=0, le=20), Integral]
TopK = Annotated[int, Field(ge=-1, le=2**63 - 1), Integral]


class StreamOptions(Body):
    include_usage: bool | None = None


class Sampling(Body):
    """Sampling fields both OpenAI bodies share (vLLM's extras included)."""

    top_p: Probability | None = None
    top_k: TopK | None = None
    min_p: Probability | None = None
    seed: Seed | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    repetition_penalty: Annotated[float, Field(gt=0.0)] | None = None


class OpenAIChatRequest(Sampling):
    """`POST /v1/chat/completions`."""

    #: Unknown fields are kept (`model_extra`): a body with any is forwarded as it is.
    model_config = ConfigDict(extra="allow", strict=True)

    model: ModelName
    messages: Messages
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: Temperature | None = None
    max_tokens: MaxTokens | None = None
    max_completion_tokens: MaxTokens | None = None
    stop: str | StopList | None = None
    n: Count | None = None
    logprobs: bool | None = None
    top_logprobs: TopLogprobs | None = None
    response_format: dict[str, Any] | None = None
    tools: Objects | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    functions: Unsupported = None


class OpenAICompletionRequest(Sampling):
    """`POST /v1/completions`."""

    #: Unknown fields are kept (`model_extra`): a body with any is forwarded as it is.
    model_config = ConfigDict(extra="allow", strict=True)

    model: ModelName
    prompt: str | Annotated[list[str], Field(min_length=1, max_length=1)]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: Temperature | None = None
    max_tokens: MaxTokens | None = None
    stop: str | StopList | None = None
    n: Count | None = None
    best_of: One | None = None
    echo: Literal[False] | None = None
    #: The completions API's logprobs is the number of alternatives per token (0-5).
    logprobs: Annotated[int, Field(ge=0, le=5), Integral] | None = None
    suffix: str | None = None


# -- Ollama -----------------------------------------------------------------------------


class OllamaOptions(BaseModel):
    """Ollama's `options`: the ones the gateway uses are checked, the rest passed on."""

    model_config = ConfigDict(extra="allow", strict=True)

    temperature: Temperature | None = None
    #: -1 (no limit) and -2 (fill the context) are Ollama's; both mean "the config's max_tokens".
    num_predict: Annotated[int, Field(ge=-2, le=MAX_TOKENS), Integral] | None = None
    stop: StopList | None = None


KeepAlive = str | float | None
Think = bool | Literal["low", "medium", "high"] | None
Format = str | dict[str, Any] | None


class OllamaGenerateRequest(Body):
    """`POST /api/generate`."""

    #: Unknown fields are kept (`model_extra`): a body with any is forwarded as it is.
    model_config = ConfigDict(extra="allow", strict=True)

    model: ModelName
    prompt: str | None = None
    system: str | None = None
    stream: bool | None = None
    options: OllamaOptions | None = None
    suffix: str | None = None
    format: Format = None
    images: list[str] | None = None
    think: Think = None
    keep_alive: KeepAlive = None
    logprobs: bool | None = None
    top_logprobs: TopLogprobs | None = None


class OllamaChatRequest(Body):
    """`POST /api/chat`."""

    #: Unknown fields are kept (`model_extra`): a body with any is forwarded as it is.
    model_config = ConfigDict(extra="allow", strict=True)

    model: ModelName
    messages: (
        Annotated[
            list[dict[str, Any]],
            WithJsonSchema({"type": "array", "items": _MESSAGE_SCHEMA}),
        ]
        | None
    ) = None
    stream: bool | None = None
    options: OllamaOptions | None = None
    format: Format = None
    tools: Objects | None = None
    think: Think = None
    keep_alive: KeepAlive = None
    logprobs: bool | None = None
    top_logprobs: TopLogprobs | None = None


class OllamaShowRequest(Body):
    """`POST /api/show`."""

    model: ModelName


M = TypeVar("M", bound=Body)


def parse(model: type[M], raw: bytes) -> M:
    """Validate `raw` JSON as `model`; a GatewayError (400) names every bad field."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as error:
        raise invalid_body(error) from None


def invalid_body(error: ValidationError) -> GatewayError:
    """'messages: Field required' with param 'messages', like OpenAI's own 400s."""
    problems = error.errors(include_url=False, include_input=False)
    paths = [field_path(problem["loc"]) for problem in problems]
    message = "; ".join(
        f"{path or 'body'}: {problem['msg']}" for path, problem in zip(paths, problems, strict=True)
    )
    # The deepest path is the most precise (in a union, the branch that got furthest).
    param = max(paths, key=lambda path: path.count(".") + bool(path), default="")
    return bad_request(message, param or None)


def field_path(loc: tuple[int | str, ...]) -> str:
    """("messages", 0, "role") -> "messages.0.role", leaving out pydantic's union-member tags."""
    return ".".join(str(part) for part in loc if not _is_union_tag(part))


def _is_union_tag(part: int | str) -> bool:
    # Tags look like "str", "list[TextPart]", "function-after[...]" or "literal['']".
    return isinstance(part, str) and (
        part in {"str", "int", "float", "bool", "none"} or "[" in part
    )
