"""Embedding routes of both protocols: `POST /v1/embeddings`, `POST /api/embed` and the legacy
`POST /api/embeddings`, each routed per model like generation (router.embed_request), counted
in `/metrics`, and answered in the client's protocol whatever the backend speaks."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson
import structlog
from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from llm_backends import hops
from llm_backends.gateway import docs
from llm_backends.gateway.disconnect import CLIENT_CLOSED, CancelOnDisconnect, ClientDisconnected
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
from llm_backends.gateway.errors import (
    DEFAULT_ROUTE_HEADER,
    GatewayError,
    Protocol,
    from_router_error,
)
from llm_backends.gateway.flow import (
    JSON,
    error_response,
    gateway_of,
    overhead_header,
    read_body,
)
from llm_backends.gateway.loop_guard import loop_refusal
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
    seen = hops.incoming(request.scope["headers"])
    if seen:
        if hops.is_loop(seen):
            refusal = await loop_refusal(gateway.router, call.model, seen)
            metrics.request(protocol, call.model, "", str(refusal.status), None)
            return error_response(protocol, refusal, time.perf_counter() - started)
        call.request = replace(call.request, hops=seen)
    calling = time.perf_counter()
    try:
        async with CancelOnDisconnect(request.receive, gateway.disconnects):
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
    headers = {"x-llm-backend": result.backend, "x-llm-endpoint": result.endpoint}
    if not gateway.router.has_config(call.model):
        headers[DEFAULT_ROUTE_HEADER] = "true"
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


def _declare(
    router: APIRouter,
    path: str,
    name: str,
    summary: str,
    endpoint: EmbedEndpoint,
    body: type[BaseModel],
    answer: type[BaseModel],
) -> Callable[[Request], Awaitable[Response]]:
    """One embeddings route: a thin handler over `handle_embed`, documented with its body,
    answer and the protocol's error shape. `name` keeps the route's (and operationId's) name."""

    async def handler(request: Request) -> Response:
        return await handle_embed(request, endpoint)

    handler.__name__ = handler.__qualname__ = name
    error = docs.OpenAIError if endpoint.protocol is Protocol.OPENAI else docs.OllamaError
    router.post(
        path,
        name=name,
        summary=summary,
        openapi_extra=docs.request_body(body),
        responses=_responses(answer, error),
    )(handler)
    return handler


openai_embeddings = _declare(
    openai_router,
    "/embeddings",
    "openai_embeddings",
    "Embeddings (OpenAI protocol), routed to the model's backend",
    OPENAI,
    OpenAIEmbeddingRequest,
    OpenAIEmbeddingList,
)
ollama_embed = _declare(
    ollama_router,
    "/embed",
    "ollama_embed",
    "Embeddings (Ollama protocol), routed to the model's backend",
    OLLAMA_EMBED,
    OllamaEmbedRequest,
    OllamaEmbedResponse,
)
ollama_embeddings = _declare(
    ollama_router,
    "/embeddings",
    "ollama_embeddings",
    "One embedding (Ollama's legacy API: `prompt` -> `embedding`)",
    OLLAMA_EMBEDDINGS,
    OllamaEmbeddingsRequest,
    OllamaEmbeddingsResponse,
)


#: Schemas the routes above refer to, for the app's `components.schemas`.
DOCUMENTED: tuple[type[BaseModel], ...] = (
    OpenAIEmbeddingRequest,
    OllamaEmbedRequest,
    OllamaEmbeddingsRequest,
    OpenAIEmbeddingList,
    OllamaEmbedResponse,
    OllamaEmbeddingsResponse,
)
