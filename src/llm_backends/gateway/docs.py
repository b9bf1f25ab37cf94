"""OpenAPI documentation of the gateway routes.

The routes parse their bodies themselves (for speed), so FastAPI cannot see the request
models: `request_body()` documents them through `openapi_extra`, and `components()` gives the
schemas to merge into the app's `components.schemas`. The response models below exist only
for the documentation (and for schemathesis to check real answers against).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from llm_backends.gateway.schemas import (
    OllamaChatRequest,
    OllamaGenerateRequest,
    OllamaShowRequest,
    OpenAIChatRequest,
    OpenAICompletionRequest,
)

REF = "#/components/schemas/{model}"

FinishReason = Literal["stop", "length", "tool_calls"]


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ToolFunction(BaseModel):
    name: str
    arguments: str


class ToolCallEntry(BaseModel):
    id: str
    type: Literal["function"]
    function: ToolFunction


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    #: null when the answer is only tool calls
    content: str | None
    tool_calls: list[ToolCallEntry] | None = None
    reasoning_content: str | None = None


class ChatLogprobs(BaseModel):
    content: list[dict[str, Any]] | None


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: ChatLogprobs | None
    finish_reason: FinishReason


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage | None


class TextLogprobs(BaseModel):
    tokens: list[Any]
    token_logprobs: list[Any]
    top_logprobs: list[dict[str, Any]]
    text_offset: list[int]


class TextChoice(BaseModel):
    index: int
    text: str
    logprobs: TextLogprobs | None
    finish_reason: FinishReason


class TextCompletion(BaseModel):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[TextChoice]
    usage: Usage | None


class ModelEntry(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelEntry]


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIError(BaseModel):
    error: OpenAIErrorDetail


class OllamaError(BaseModel):
    error: str


class OllamaToolCall(BaseModel):
    id: str | None = None
    function: dict[str, Any]


class OllamaMessage(BaseModel):
    role: Literal["assistant"]
    content: str
    thinking: str | None = None
    tool_calls: list[OllamaToolCall] | None = None


class OllamaAnswer(BaseModel):
    """The final object of /api/generate (`response`) or /api/chat (`message`)."""

    model: str
    created_at: str
    response: str | None = None
    thinking: str | None = None
    message: OllamaMessage | None = None
    logprobs: list[dict[str, Any]] | None = None
    done: bool
    done_reason: Literal["stop", "length", "load"] | None = None
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None


class OllamaModelDetails(BaseModel):
    parent_model: str
    format: str
    family: str
    families: list[str] | None
    parameter_size: str
    quantization_level: str


class OllamaModel(BaseModel):
    name: str
    model: str
    modified_at: str
    size: int
    digest: str
    details: OllamaModelDetails


class OllamaTags(BaseModel):
    models: list[OllamaModel]


class OllamaShow(BaseModel):
    modelfile: str
    parameters: str
    template: str
    details: OllamaModelDetails
    model_info: dict[str, Any]
    capabilities: list[str]
    modified_at: str | None = None


class OllamaVersion(BaseModel):
    version: str


_REQUESTS: tuple[type[BaseModel], ...] = (
    OpenAIChatRequest,
    OpenAICompletionRequest,
    OllamaGenerateRequest,
    OllamaChatRequest,
    OllamaShowRequest,
)
_RESPONSES: tuple[type[BaseModel], ...] = (
    ChatCompletion,
    TextCompletion,
    ModelList,
    OpenAIError,
    OllamaError,
    OllamaAnswer,
    OllamaTags,
    OllamaShow,
    OllamaVersion,
)


def components() -> dict[str, Any]:
    """Every schema the gateway routes refer to, for `components.schemas`."""
    schemas: dict[str, Any] = {}
    for model in _REQUESTS + _RESPONSES:
        mode: Literal["validation", "serialization"] = (
            "validation" if model in _REQUESTS else "serialization"
        )
        schema = model.model_json_schema(ref_template=REF, mode=mode)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting a JSON request body the route parses itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref(model)}},
        }
    }


_ERROR_STATUSES = {
    400: "Bad request body: the message names the field",
    401: "Token missing or invalid (only with GATEWAY_REQUIRE_AUTH=true)",
    403: "Token lacks llm:generate (only with GATEWAY_REQUIRE_AUTH=true)",
    404: "The model is unknown to its backend",
    500: "Unexpected gateway failure (no details are leaked)",
    502: "The backend is down or answered outside its protocol",
    503: "The config or token store cannot be reached",
    504: "The backend did not answer within the config's timeout",
    508: "Loop detected: a config leads back to a gateway the request already passed through",
}


def _errors(
    error_model: type[BaseModel], statuses: tuple[int, ...]
) -> dict[int | str, dict[str, Any]]:
    content = {"application/json": {"schema": _ref(error_model)}}
    return {
        status: {"description": _ERROR_STATUSES[status], "content": content} for status in statuses
    }


#: One server-sent event: `data` is a JSON chunk, an `{"error": ...}` object, or `[DONE]`.
SSE_EVENT = {
    "type": "object",
    "required": ["data"],
    "properties": {"data": {"type": "string"}},
}
#: An NDJSON stream, as one text body: one JSON object per line.
NDJSON_BODY = {"type": "string"}


def generation_responses(
    answer: type[BaseModel], error_model: type[BaseModel], stream_media_type: str
) -> dict[int | str, dict[str, Any]]:
    stream_schema = SSE_EVENT if stream_media_type == "text/event-stream" else NDJSON_BODY
    return {
        200: {
            "description": "The answer; a stream when `stream` asks for one",
            "content": {
                "application/json": {"schema": _ref(answer)},
                stream_media_type: {"schema": stream_schema},
            },
        },
        **_errors(error_model, tuple(_ERROR_STATUSES)),
    }


def listing_responses(
    answer: type[BaseModel], error_model: type[BaseModel], *, has_body: bool = False
) -> dict[int | str, dict[str, Any]]:
    """Model lists, show and version: auth and store failures (and 400 with a body)."""
    statuses = (400, 401, 403, 500, 503) if has_body else (401, 403, 500, 503)
    return {
        200: {"description": "OK", "content": {"application/json": {"schema": _ref(answer)}}},
        **_errors(error_model, statuses),
    }
