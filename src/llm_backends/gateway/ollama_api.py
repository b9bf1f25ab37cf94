"""Ollama-compatible routes: `/api/generate`, `/api/chat`, `/api/tags`, `/api/show`,
`/api/version` (enough for the `ollama` client's generate, chat, list and show).

They share the `/api` prefix with the Admin API's `/api/llm-backends...`: keep gateway paths
to Ollama's own names so the two never clash.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from llm_backends.gateway import catalog, docs
from llm_backends.gateway.errors import Protocol
from llm_backends.gateway.flow import Endpoint, handle
from llm_backends.gateway.schemas import (
    OllamaChatRequest,
    OllamaGenerateRequest,
    OllamaShowRequest,
    parse,
)
from llm_backends.gateway.streaming import NDJSON, OllamaEncoder
from llm_backends.gateway.translate import RouterCall
from llm_backends.gateway.translate_ollama import (
    ollama_chat_call,
    ollama_generate_call,
    ollama_loaded,
    ollama_response,
)
from llm_backends.router.types import Result

router = APIRouter(prefix="/api", tags=["gateway: Ollama"])


def _parse_generate(raw: bytes) -> RouterCall:
    return ollama_generate_call(parse(OllamaGenerateRequest, raw), raw)


def _parse_chat(raw: bytes) -> RouterCall:
    return ollama_chat_call(parse(OllamaChatRequest, raw), raw)


def _render(call: RouterCall, result: Result, elapsed: float) -> dict[str, Any]:
    return ollama_response(call, result, elapsed)


def _encoder(call: RouterCall, started: float) -> OllamaEncoder:
    return OllamaEncoder(call, started)


GENERATE = Endpoint(Protocol.OLLAMA, _parse_generate, _render, _encoder, ollama_loaded)
CHAT = Endpoint(Protocol.OLLAMA, _parse_chat, _render, _encoder, ollama_loaded)


@router.post(
    "/generate",
    summary="Generate (Ollama protocol; NDJSON stream unless `stream: false`)",
    openapi_extra=docs.request_body(OllamaGenerateRequest),
    responses=docs.generation_responses(docs.OllamaAnswer, docs.OllamaError, NDJSON),
)
async def generate(request: Request) -> Response:
    return await handle(request, GENERATE)


@router.post(
    "/chat",
    summary="Chat (Ollama protocol; NDJSON stream unless `stream: false`)",
    openapi_extra=docs.request_body(OllamaChatRequest),
    responses=docs.generation_responses(docs.OllamaAnswer, docs.OllamaError, NDJSON),
)
async def chat(request: Request) -> Response:
    return await handle(request, CHAT)


@router.get(
    "/tags",
    summary="The enabled model configs, ordered by name (Ollama's model list)",
    responses=docs.listing_responses(docs.OllamaTags, docs.OllamaError),
)
async def tags(request: Request) -> Response:
    return await catalog.list_models(request, Protocol.OLLAMA, catalog.ollama_tags)


@router.post(
    "/show",
    summary="What answers for a model (the default Ollama when it has no config)",
    openapi_extra=docs.request_body(OllamaShowRequest),
    responses=docs.listing_responses(docs.OllamaShow, docs.OllamaError, has_body=True),
)
async def show(request: Request) -> Response:
    return await catalog.show(request)


@router.get(
    "/version",
    summary="The Ollama API version this gateway speaks",
    responses=docs.listing_responses(docs.OllamaVersion, docs.OllamaError),
)
async def version(request: Request) -> Response:
    return await catalog.version(request)
