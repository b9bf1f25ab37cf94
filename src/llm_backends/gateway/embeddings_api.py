"""Embedding routes of both protocols: `POST /v1/embeddings`, `POST /api/embed` and the legacy
`POST /api/embeddings`, each routed per model like generation (router.embed_request), counted
in `/metrics`, and answered in the client's protocol whatever the backend speaks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import structlog
from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from llm_backends.gateway import docs
from llm_backends.gateway.disconnect import CancelOnDisconnect, ClientDisconnected
from llm_backends.gateway.embeddings_wire import (
    EmbedCall,
    OllamaEmbeddingsRequest,
    OllamaEmbeddingsResponse,
    OllamaEmbedRequest,
    OllamaEmbedResponse,
    OpenAIEmbeddingList,
    OpenAIEmbeddingRequest,
    parse_ollama_embed,
    parse_ollama_embeddings,
    parse_openai,
    render_ollama_embed,
    render_ollama_embeddings,
    render_openai,
)
from llm_backends.gateway.errors import GatewayError, Protocol, from_router_error
from llm_backends.gateway.flow import (
    CLIENT_CLOSED,
    JSON,
    error_response,
    gateway_of,
    overhead_header,
    read_body,
)
from llm_backends.router.embeddings import EmbedResult
from llm_backends.router.errors import LLMRouterError

log = structlog.get_logger("llm_backends.gateway")

openai_router = APIRouter(prefix="/v1", tags=["gateway: OpenAI"])
ollama_router = APIRouter(prefix="/api", tags=["gateway: Ollama"])


@dataclass(frozen=True, slots=True)
class EmbedEndpoint:
    protocol: Protocol
    parse: Callable[[bytes], EmbedCall]
    render: Callable[[EmbedCall, EmbedResult], dict[str, Any]]


OPENAI = EmbedEndpoint(Protocol.OPENAI, parse_openai, render_openai)
OLLAMA_EMBED = EmbedEndpoint(Protocol.OLLAMA, parse_ollama_embed, render_ollama_embed)
OLLAMA_EMBEDDINGS = EmbedEndpoint(
    Protocol.OLLAMA, parse_ollama_embeddings, render_ollama_embeddings
)


async def handle_embed(request: Request, endpoint: EmbedEndpoint) -> Response:
    """auth -> parse -> router.embed_request -> render; never raises (errors in protocol)."""
    started = time.perf_counter()
    gateway = gateway_of(request)
    protocol = endpoint.protocol
    metrics = gateway.metrics
    try:
        await gateway.auth.check(request)
        call = endpoint.parse(await read_body(request))
    except GatewayError as error:
        metrics.request(protocol, "", "", str(error.status), None)
        return error_response(protocol, error, time.perf_counter() - started)
    except ClientDisconnect:
        metrics.request(protocol, "", "", str(CLIENT_CLOSED), None)
        return Response(status_code=CLIENT_CLOSED)
    calling = time.perf_counter()
    try:
        async with CancelOnDisconnect(request.receive):
            result = await gateway.router.embed_request(call.model, call.request)
    except ClientDisconnected:
        metrics.request(protocol, call.model, "", str(CLIENT_CLOSED), None)
        return Response(status_code=CLIENT_CLOSED)
    except LLMRouterError as error:
        waited = time.perf_counter() - calling
        metrics.routed_error(call.model, error)
        failure = from_router_error(error)
        elapsed = time.perf_counter() - started
        metrics.request(protocol, call.model, error.backend, str(failure.status), elapsed)
        return error_response(protocol, failure, elapsed - waited)
    except Exception:  # a bug still answers in the protocol's shape, without a traceback
        log.exception("gateway_request_failed", model=call.model, protocol=protocol.value)
        failure = GatewayError(500, "internal gateway error", code="internal_error")
        metrics.request(protocol, call.model, "", "500", None)
        return error_response(protocol, failure, time.perf_counter() - started)
    waited = time.perf_counter() - calling
    body = orjson.dumps(endpoint.render(call, result))
    headers = {"x-llm-backend": result.backend}
    if result.fallback_from:
        headers["x-llm-fallback-from"] = result.fallback_from
        metrics.fallback(call.model, result.fallback_from, result.backend)
    elapsed = time.perf_counter() - started
    headers["x-llm-overhead-ms"] = overhead_header(elapsed - waited)
    metrics.request(protocol, call.model, result.backend, "200", elapsed)
    return Response(body, media_type=JSON, headers=headers)


def _responses(answer: type[BaseModel], error: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """The generation routes' error statuses, with a plain JSON answer (no stream)."""
    responses = docs.generation_responses(answer, error, "text/event-stream")
    schema = {"$ref": docs.REF.format(model=answer.__name__)}
    responses[200] = {"description": "The embeddings", "content": {JSON: {"schema": schema}}}
    return responses


@openai_router.post(
    "/embeddings",
    summary="Embeddings (OpenAI protocol), routed to the model's backend",
    openapi_extra=docs.request_body(OpenAIEmbeddingRequest),
    responses=_responses(OpenAIEmbeddingList, docs.OpenAIError),
)
async def openai_embeddings(request: Request) -> Response:
    return await handle_embed(request, OPENAI)


@ollama_router.post(
    "/embed",
    summary="Embeddings (Ollama protocol), routed to the model's backend",
    openapi_extra=docs.request_body(OllamaEmbedRequest),
    responses=_responses(OllamaEmbedResponse, docs.OllamaError),
)
async def ollama_embed(request: Request) -> Response:
    return await handle_embed(request, OLLAMA_EMBED)


@ollama_router.post(
    "/embeddings",
    summary="One embedding (Ollama's legacy API: `prompt` -> `embedding`)",
    openapi_extra=docs.request_body(OllamaEmbeddingsRequest),
    responses=_responses(OllamaEmbeddingsResponse, docs.OllamaError),
)
async def ollama_embeddings(request: Request) -> Response:
    return await handle_embed(request, OLLAMA_EMBEDDINGS)


#: Schemas the routes above refer to, for the app's `components.schemas`.
DOCUMENTED: tuple[type[BaseModel], ...] = (
    OpenAIEmbeddingRequest,
    OllamaEmbedRequest,
    OllamaEmbeddingsRequest,
    OpenAIEmbeddingList,
    OllamaEmbedResponse,
    OllamaEmbeddingsResponse,
)
