"""A fake OpenAI-compatible server (vLLM, llama.cpp, LM Studio, mlx_lm.server), with faults.

Wire format as those servers send it: `POST /v1/completions` answers a `text_completion`
object (`choices[0].text`), `POST /v1/chat/completions` a `chat.completion`
(`choices[0].message.content`), both with `finish_reason` and `usage`. With `"stream": true`
the answer is server-sent events: `data: {chunk}` events (`choices[0].text`, or
`choices[0].delta` for chat: first the role, then content, then an empty delta with the
finish_reason), a usage event with `choices: []` if `stream_options.include_usage`, then
`data: [DONE]`. mlx_lm.server may send `: keepalive` comment lines first.

Error bodies come in three dialects (`OpenAIBehaviour.error_style`): OpenAI/llama.cpp
`{"error": {"message", "type", "param", "code"}}`, mlx_lm.server `{"error": "..."}` and
older vLLM `{"object": "error", "message", "type", "code"}`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes import fake_features as features
from tests.fakes.common import (
    Behaviour,
    FakeState,
    TruncatedResponse,
    huge_error,
    paced_whole,
    padded,
    pause,
    scripted_stream,
    sse_event,
)

SSE = "text/event-stream"
ErrorStyle = Literal["openai", "mlx", "vllm"]


@dataclass
class OpenAIBehaviour(Behaviour):
    """`Behaviour` plus OpenAI-protocol specifics."""

    #: Which server's error body shape to send.
    error_style: ErrorStyle = "openai"
    #: `: keepalive` comment lines before the first event (mlx_lm.server sends them).
    keepalive: int = 0
    #: Send the usage event when the client asks with stream_options.include_usage.
    include_usage: bool = True
    #: End streams with `data: [DONE]`.
    send_done: bool = True
    #: Which server's feature behaviour: "vllm" (n, logprobs, reasoning_content, `tools: []`
    #: is a 400) or "mlx" (mlx_lm.server: ignores n, reasoning in `reasoning`, text parts only).
    flavour: Literal["vllm", "mlx"] = "vllm"


def create_app(state: FakeState[OpenAIBehaviour]) -> Starlette:
    """The fake's ASGI app; `state` is how tests steer and inspect it."""

    async def models(request: Request) -> Response:
        await state.record(request)
        data = [
            {"id": name, "object": "model", "created": 1_700_000_000, "owned_by": "fake"}
            for name in state.behaviour.models
        ]
        return JSONResponse({"object": "list", "data": data})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def completions(request: Request) -> Response:
        return await _answer(request, chat=False)

    async def chat_completions(request: Request) -> Response:
        return await _answer(request, chat=True)

    async def _answer(request: Request, *, chat: bool) -> Response:
        recorded = await state.record(request)
        behaviour = state.behaviour_for_next()
        if await pause(request, behaviour.delay):
            state.note_abort()
        style = behaviour.error_style
        body = recorded.body
        if not isinstance(body, dict):
            return _error(style, 400, "Invalid JSON in request body")
        if ("messages" if chat else "prompt") not in body:
            field = "messages" if chat else "prompt"
            return _error(style, 400, f"Request did not contain {field}")
        # mlx_lm.server answers with "default_model" when the request names none.
        model = body.get("model", "default_model")
        if "model" in body and not behaviour.knows(model):
            return _error(style, 404, f"The model `{model}` does not exist.")
        if behaviour.status != 200:
            headers = {"Retry-After": behaviour.retry_after} if behaviour.retry_after else {}
            if behaviour.huge:
                message = padded(behaviour.error, behaviour.huge)
                body = orjson.dumps(_error_body(style, behaviour.status, message))
                return huge_error(state, behaviour.status, body, headers)  # type: ignore[return-value]
            return _error(style, behaviour.status, behaviour.error, headers)
        refusal = features.openai_refusal(body, behaviour.flavour)
        if refusal:
            return _error(style, 400, refusal)
        if body.get("stream"):
            options = body.get("stream_options") or {}
            usage = bool(options.get("include_usage")) and behaviour.include_usage
            return _stream(state, behaviour, model, chat, usage, body)
        return _whole(state, behaviour, model, chat, body)

    return Starlette(
        routes=[
            Route("/v1/models", models, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/v1/completions", completions, methods=["POST"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        ]
    )


def _error_body(style: ErrorStyle, status: int, message: str) -> dict[str, Any]:
    if style == "mlx":
        return {"error": message}
    kind = "invalid_request_error" if status < 500 else "server_error"
    if style == "vllm":
        return {"object": "error", "message": message, "type": kind, "param": None, "code": status}
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _error(
    style: ErrorStyle, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse(_error_body(style, status, message), status_code=status, headers=headers)


def _usage(behaviour: OpenAIBehaviour) -> dict[str, int]:
    completion = max(behaviour.chunks, 1)
    return {
        "prompt_tokens": behaviour.prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": behaviour.prompt_tokens + completion,
    }


def _envelope(model: str, chat: bool, stream: bool) -> dict[str, Any]:
    if chat:
        obj = "chat.completion.chunk" if stream else "chat.completion"
    else:
        obj = "text_completion"
    prefix = "chatcmpl" if chat else "cmpl"
    return {"id": f"{prefix}-fake", "object": obj, "created": int(time.time()), "model": model}


def _whole(
    state: FakeState[OpenAIBehaviour],
    behaviour: OpenAIBehaviour,
    model: str,
    chat: bool,
    request: dict[str, Any],
) -> Response:
    if behaviour.garbage:
        return Response(b"<html>502 Bad Gateway</html>", media_type="application/json")
    flavour = behaviour.flavour
    calls = features.calls_for(behaviour, request) if chat else []
    thinking = features.reasoning_for(behaviour, request, flavour) if chat else None
    choices = []
    for index in range(features.choices_wanted(request, flavour)):
        reply = padded(behaviour.reply, behaviour.huge) + (f" #{index}" if index else "")
        choice: dict[str, Any] = {
            "index": index,
            "logprobs": features.logprobs_for(reply, request, chat),
            "finish_reason": "tool_calls" if calls else behaviour.finish_reason,
        }
        if chat:
            message: dict[str, Any] = {"role": "assistant", "content": None if calls else reply}
            if calls:
                message["tool_calls"] = features.openai_calls(calls)
            if thinking:
                message[features.reasoning_key(flavour)] = thinking
            choice["message"] = message
        else:
            choice["text"] = reply
        choices.append(choice)
    data = _envelope(model, chat, stream=False)
    data["usage"] = _usage(behaviour)
    if not behaviour.missing_fields:
        data["choices"] = choices
    body = JSONResponse(data).body
    paced = paced_whole(state, behaviour, bytes(body))
    if paced is not None:
        return paced  # type: ignore[return-value]
    if behaviour.drop_after is not None:
        return TruncatedResponse(bytes(body))  # type: ignore[return-value]
    if behaviour.cut_after is not None:
        body = body[: len(body) // 2]
    return Response(body, media_type="application/json")


def _stream(
    state: FakeState[OpenAIBehaviour],
    behaviour: OpenAIBehaviour,
    model: str,
    chat: bool,
    usage: bool,
    request: dict[str, Any],
) -> Response:
    if behaviour.garbage:
        return Response(b"data: {this is not json\n\n", media_type=SSE)
    envelope = _envelope(model, chat, stream=True)
    flavour = behaviour.flavour
    calls = features.calls_for(behaviour, request) if chat else []
    thinking = features.reasoning_for(behaviour, request, flavour) if chat else None

    def event(choice: dict[str, Any] | None) -> bytes:
        if behaviour.missing_fields:
            return sse_event(envelope)
        return sse_event({**envelope, "choices": [] if choice is None else [choice]})

    def piece(text: str) -> bytes:
        logprobs = features.logprobs_for(text, request, chat)
        if chat:
            delta = {"content": text}
            return event({"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": None})
        return event({"index": 0, "text": text, "logprobs": logprobs, "finish_reason": None})

    head = [b": keepalive %d/%d\n\n" % (i, behaviour.keepalive) for i in range(behaviour.keepalive)]
    if chat:
        head.append(event({"index": 0, "delta": {"role": "assistant", "content": ""}}))
    if thinking:
        delta = {features.reasoning_key(flavour): thinking}
        head.append(event({"index": 0, "delta": delta, "finish_reason": None}))
    final: dict[str, Any] = {
        "index": 0,
        "finish_reason": "tool_calls" if calls else behaviour.finish_reason,
    }
    final.update({"delta": {}} if chat else {"text": "", "logprobs": None})
    tail = [
        event({"index": 0, "delta": {"tool_calls": [d]}, "finish_reason": None})
        for d in features.call_deltas(calls)
    ]
    tail.append(event(final))
    if usage:
        tail.append(sse_event({**envelope, "choices": [], "usage": _usage(behaviour)}))
    if behaviour.send_done:
        tail.append(b"data: [DONE]\n\n")
    # In-band errors are `{"error": ...}` in every dialect (vLLM's too).
    style: ErrorStyle = "mlx" if behaviour.error_style == "mlx" else "openai"
    error = sse_event(_error_body(style, 500, behaviour.error))
    return StreamingResponse(
        scripted_stream(state, behaviour, head=head, piece=piece, error=error, tail=tail),
        media_type=SSE,
    )
