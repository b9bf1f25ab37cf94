"""OpenAI-compatible routes: `/v1/chat/completions`, `/v1/completions`, `/v1/models`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from llm_backends.gateway import catalog, docs
from llm_backends.gateway.errors import Protocol
from llm_backends.gateway.flow import Endpoint, handle
from llm_backends.gateway.schemas import OpenAIChatRequest, OpenAICompletionRequest, parse
from llm_backends.gateway.streaming import SSE, OpenAIEncoder
from llm_backends.gateway.translate import RouterCall
from llm_backends.gateway.translate_openai import (
    openai_chat_call,
    openai_chat_response,
    openai_completion_call,
    openai_completion_response,
)
from llm_backends.router.types import Result

router = APIRouter(prefix="/v1", tags=["gateway: OpenAI"])


def _parse_chat(raw: bytes) -> RouterCall:
    return openai_chat_call(parse(OpenAIChatRequest, raw), raw)


def _parse_completion(raw: bytes) -> RouterCall:
    return openai_completion_call(parse(OpenAICompletionRequest, raw), raw)


def _render_chat(call: RouterCall, result: Result, _elapsed: float) -> dict[str, Any]:
    return openai_chat_response(call, result)


def _render_completion(call: RouterCall, result: Result, _elapsed: float) -> dict[str, Any]:
    return openai_completion_response(call, result)


def _encoder(call: RouterCall, _started: float) -> OpenAIEncoder:
    return OpenAIEncoder(call)


CHAT = Endpoint(Protocol.OPENAI, _parse_chat, _render_chat, _encoder)
COMPLETION = Endpoint(Protocol.OPENAI, _parse_completion, _render_completion, _encoder)


@router.post(
    "/chat/completions",
    summary="Chat completion (OpenAI protocol), routed to the model's backend",
    openapi_extra=docs.request_body(OpenAIChatRequest),
    responses=docs.generation_responses(docs.ChatCompletion, docs.OpenAIError, SSE),
)
async def chat_completions(request: Request) -> Response:
    return await handle(request, CHAT)


@router.post(
    "/completions",
    summary="Text completion (OpenAI protocol), routed to the model's backend",
    openapi_extra=docs.request_body(OpenAICompletionRequest),
    responses=docs.generation_responses(docs.TextCompletion, docs.OpenAIError, SSE),
)
async def completions(request: Request) -> Response:
    return await handle(request, COMPLETION)


@router.get(
    "/models",
    summary="The enabled model configs, ordered by name",
    responses=docs.listing_responses(docs.ModelList, docs.OpenAIError),
)
async def models(request: Request) -> Response:
    return await catalog.list_models(request, Protocol.OPENAI, catalog.openai_models)
