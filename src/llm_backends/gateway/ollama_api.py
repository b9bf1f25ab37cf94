"""Ollama-compatible routes: `/api/generate`, `/api/chat`, `/api/tags`, `/api/show`, `/api/ps`,
`/api/version` (the `ollama` client's generate, chat, list, show and ps; embeddings are in
embeddings_api).

They share the `/api` prefix with the Admin API's `/api/llm-backends...`: keep gateway paths
to Ollama's own names so the two never clash.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from llm_backends.gateway import catalog, catalog_docs, docs
from llm_backends.gateway.errors import Protocol
from llm_backends.gateway.flow import Endpoint, handle
from llm_backends.gateway.schemas import (
    OllamaChatRequest,
    OllamaGenerateRequest,
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
    summary="The enabled model configs, then the default Ollama's other models",
    responses=docs.listing_responses(docs.OllamaTags, docs.OllamaError),
)
async def tags(request: Request) -> Response:
    return await catalog.list_models(request, Protocol.OLLAMA, catalog.ollama_tags)


@router.post(
    "/show",
    summary="The answering backend's description of a model (`model`, or legacy `name`)",
    openapi_extra=docs.request_body(catalog.ShowRequest),
    responses=catalog_docs.show_responses(),
)
async def show(request: Request) -> Response:
    return await catalog.show(request)


@router.get(
    "/ps",
    summary="Models the Ollama backends have loaded, under the gateway's names",
    responses=docs.listing_responses(catalog_docs.OllamaPs, docs.OllamaError),
)
async def ps(request: Request) -> Response:
    return await catalog.ps(request)


@router.get(
    "/version",
    summary="The Ollama API version this gateway speaks",
    responses=docs.listing_responses(docs.OllamaVersion, docs.OllamaError),
)
async def version(request: Request) -> Response:
    return await catalog.version(request)
