"""Embedding requests and answers of both protocols: parsed into one `EmbeddingRequest`
(carrying the client's own body for a backend of the same protocol) and rendered back.

OpenAI `POST /v1/embeddings`: `input` a string, strings, or token ids; `encoding_format`
`float` or `base64` (the official clients ask for base64 unless told: little-endian float32);
`dimensions`. Ollama `POST /api/embed`: `input` a string or strings, `truncate`, `dimensions`,
`keep_alive`, `options`; the answer has `embeddings`, `total_duration`, `load_duration` and
`prompt_eval_count` (clients require all of them). Legacy `POST /api/embeddings`: `prompt` ->
`embedding`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

from llm_backends.admin.schemas import ModelName
from llm_backends.gateway.errors import GatewayError, bad_request
from llm_backends.gateway.schemas import Integral, parse
from llm_backends.router.embeddings import (
    EmbeddingRequest,
    EmbedResult,
    Passthrough,
    encode_base64,
    split_input,
)

Dimensions = Annotated[int, Field(ge=1, le=65536), Integral]
TokenIds = Annotated[list[int], Field(min_length=1)]
OpenAIInput = (
    str
    | Annotated[list[str], Field(min_length=1)]
    | TokenIds
    | Annotated[list[TokenIds], Field(min_length=1)]
)
KeepAlive = str | float | None


class _Body(BaseModel):
    # Unknown fields are kept for a same-protocol backend (see Passthrough), not validated.
    model_config = ConfigDict(extra="ignore", strict=True)


class OpenAIEmbeddingRequest(_Body):
    """`POST /v1/embeddings`."""

    model: ModelName
    input: OpenAIInput
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: Dimensions | None = None
    user: str | None = None


class OllamaEmbedRequest(_Body):
    """`POST /api/embed`."""

    model: ModelName
    input: str | list[str] | None = None
    truncate: bool | None = None
    dimensions: Dimensions | None = None
    keep_alive: KeepAlive = None
    options: dict[str, Any] | None = None


class OllamaEmbeddingsRequest(_Body):
    """`POST /api/embeddings` (legacy)."""

    model: ModelName
    prompt: str | None = None
    keep_alive: KeepAlive = None
    options: dict[str, Any] | None = None


class EmbedCall:
    """A parsed embedding request: the model, the router request, how to answer."""

    __slots__ = ("base64", "model", "request")

    def __init__(self, model: str, request: EmbeddingRequest, base64: bool = False) -> None:
        self.model = model
        self.request = request
        self.base64 = base64


def parse_openai(raw: bytes) -> EmbedCall:
    body = parse(OpenAIEmbeddingRequest, raw)
    try:
        texts, tokens = split_input(body.input)
    except ValueError as error:
        raise bad_request(str(error), "input") from None
    request = EmbeddingRequest(
        texts,
        tokens,
        dimensions=body.dimensions,
        passthrough=Passthrough("openai", _object(raw)),
    )
    return EmbedCall(body.model, request, base64=body.encoding_format == "base64")


def parse_ollama_embed(raw: bytes) -> EmbedCall:
    body = parse(OllamaEmbedRequest, raw)
    value = body.input
    texts = ((value,) if value else ()) if isinstance(value, str) else tuple(value or ())
    request = EmbeddingRequest(
        texts,
        dimensions=body.dimensions,
        truncate=body.truncate,
        keep_alive=body.keep_alive,
        options=_options(body.options),
        passthrough=Passthrough("ollama", _object(raw)),
    )
    return EmbedCall(body.model, request)


def parse_ollama_embeddings(raw: bytes) -> EmbedCall:
    body = parse(OllamaEmbeddingsRequest, raw)
    request = EmbeddingRequest(
        (body.prompt,) if body.prompt else (),
        keep_alive=body.keep_alive,
        options=_options(body.options),
        passthrough=Passthrough("ollama", _object(raw), legacy=True),
    )
    return EmbedCall(body.model, request)


def render_openai(call: EmbedCall, result: EmbedResult) -> dict[str, Any]:
    raw = result.raw
    if raw is not None and "data" in raw:
        return {**raw, "model": call.model}  # the server's own answer, under our name
    encode = encode_base64 if call.base64 else list
    tokens = result.prompt_tokens or 0
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": encode(vector)}
            for index, vector in enumerate(result.embeddings)
        ],
        "model": call.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def render_ollama_embed(call: EmbedCall, result: EmbedResult) -> dict[str, Any]:
    raw = result.raw
    if raw is not None and "embeddings" in raw:
        return {**raw, "model": call.model}
    return {
        "model": call.model,
        "embeddings": result.embeddings,
        "total_duration": result.total_duration_ns or int(result.latency_ms * 1_000_000),
        "load_duration": result.load_duration_ns or 0,
        "prompt_eval_count": result.prompt_tokens or 0,
    }


def render_ollama_embeddings(call: EmbedCall, result: EmbedResult) -> dict[str, Any]:
    raw = result.raw
    if raw is not None and "embedding" in raw:
        return raw
    vectors = result.embeddings
    return {"embedding": vectors[0] if vectors else []}


def _options(options: dict[str, Any] | None) -> dict[str, Any] | None:
    """Null options are absent options (LangChain sends a dozen of them)."""
    return {k: v for k, v in (options or {}).items() if v is not None} or None


def _object(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as error:  # validated already: only exotic JSON gets here
        raise bad_request(f"body: cannot be passed on: {error}") from None
    if not isinstance(data, dict):  # parse() has already refused anything else
        raise GatewayError(400, "body: must be a JSON object")
    return data


# -- OpenAPI: response shapes (the request models above document the bodies) ----------


class OpenAIEmbedding(BaseModel):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class OpenAIEmbeddingList(BaseModel):
    object: Literal["list"]
    data: list[OpenAIEmbedding]
    model: str
    usage: EmbeddingUsage | None = None


class OllamaEmbedResponse(BaseModel):
    model: str
    embeddings: list[list[float]]
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None


class OllamaEmbeddingsResponse(BaseModel):
    embedding: list[float]
