"""Request bodies of the gateway, validated straight from the raw bytes.

The models are strict (no "true" for true, no "1" for 1) and ignore unknown fields, because
real clients send many options this gateway has no use for (top_p, seed, keep_alive, ...).
What it cannot honour (tools, images, structured output, n > 1) is refused with a 400 naming
the field, never silently dropped: the JSON schema says so too, so schemathesis agrees.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

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


class TextPart(Body):
    type: Literal["text"]
    text: str


class OpenAIMessage(Body):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None


class StreamOptions(Body):
    include_usage: bool | None = None


class ResponseFormat(Body):
    type: Literal["text"]


class OpenAIChatRequest(Body):
    """`POST /v1/chat/completions`."""

    model: ModelName
    messages: Annotated[list[OpenAIMessage], Field(min_length=1)]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: Temperature | None = None
    max_tokens: MaxTokens | None = None
    max_completion_tokens: MaxTokens | None = None
    stop: str | StopList | None = None
    n: One | None = None
    logprobs: Literal[False] | None = None
    response_format: ResponseFormat | None = None
    tools: Unsupported = None
    functions: Unsupported = None


class OpenAICompletionRequest(Body):
    """`POST /v1/completions`."""

    model: ModelName
    prompt: str | Annotated[list[str], Field(min_length=1, max_length=1)]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    temperature: Temperature | None = None
    max_tokens: MaxTokens | None = None
    stop: str | StopList | None = None
    n: One | None = None
    best_of: One | None = None
    echo: Literal[False] | None = None
    logprobs: None = None
    suffix: Literal[""] | None = None


# -- Ollama -----------------------------------------------------------------------------


class OllamaOptions(Body):
    temperature: Temperature | None = None
    #: -1 (no limit) and -2 (fill the context) are Ollama's; both mean "the config's max_tokens".
    num_predict: Annotated[int, Field(ge=-2, le=MAX_TOKENS), Integral] | None = None
    stop: StopList | None = None


class OllamaGenerateRequest(Body):
    """`POST /api/generate`."""

    model: ModelName
    prompt: str | None = None
    system: str | None = None
    stream: bool | None = None
    options: OllamaOptions | None = None
    suffix: Literal[""] | None = None
    format: Literal[""] | None = None
    images: Unsupported = None


class OllamaMessage(Body):
    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = None
    images: Unsupported = None
    tool_calls: Unsupported = None


class OllamaChatRequest(Body):
    """`POST /api/chat`."""

    model: ModelName
    messages: list[OllamaMessage] | None = None
    stream: bool | None = None
    options: OllamaOptions | None = None
    format: Literal[""] | None = None
    tools: Unsupported = None


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
