"""A fake `ollama serve` speaking Ollama's real native API, with scriptable faults.

Wire format as Ollama sends it (docs.ollama.com/api): `POST /api/generate` and `/api/chat`
stream NDJSON by default (`"stream": false` for one JSON object); every line has `model`,
`created_at`, the text (`response`, or `message.content` for chat) and `done`; the last line
has `done: true`, `done_reason` and the counters and durations (nanoseconds). Errors are
`{"error": "..."}`: 400 for a bad request, 404 `model '...' not found`, 500 for a crash;
an error after the stream started is an `{"error": ...}` line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes import fake_features as features
from tests.fakes.common import (
    Behaviour,
    FakeState,
    TruncatedResponse,
    huge_error,
    json_line,
    paced_whole,
    padded,
    pause,
    scripted_stream,
)

NDJSON = "application/x-ndjson"


@dataclass
class OllamaBehaviour(Behaviour):
    """`Behaviour` plus Ollama specifics."""

    #: Reported eval_duration per generated token, in nanoseconds (20 ms: 50 tokens/s).
    eval_ns_per_token: int = 20_000_000
    #: What GET /api/version answers.
    version: str = "0.12.3"


def create_app(state: FakeState[OllamaBehaviour]) -> Starlette:
    """The fake's ASGI app; `state` is how tests steer and inspect it."""

    async def root(request: Request) -> Response:
        return PlainTextResponse("Ollama is running")

    async def version(request: Request) -> Response:
        await state.record(request)
        return JSONResponse({"version": state.behaviour.version})

    async def tags(request: Request) -> Response:
        await state.record(request)
        return JSONResponse({"models": [_model_entry(name) for name in state.behaviour.models]})

    async def generate(request: Request) -> Response:
        return await _answer(request, chat=False)

    async def chat(request: Request) -> Response:
        return await _answer(request, chat=True)

    async def _answer(request: Request, *, chat: bool) -> Response:
        recorded = await state.record(request)
        behaviour = state.behaviour_for_next()
        if await pause(request, behaviour.delay):
            state.note_abort()
        body = recorded.body
        if not isinstance(body, dict):
            return _error(400, "invalid character 'x' looking for beginning of value")
        model = body.get("model")
        if not model:
            return _error(400, "model is required")
        if not behaviour.knows(model):
            return _error(404, f"model '{model}' not found")
        if behaviour.status != 200:
            headers = {"Retry-After": behaviour.retry_after} if behaviour.retry_after else {}
            if behaviour.huge:
                body = json_line({"error": padded(behaviour.error, behaviour.huge)})
                return huge_error(state, behaviour.status, body, headers)  # type: ignore[return-value]
            return _error(behaviour.status, behaviour.error, headers)
        refusal = features.refusal(body)
        if refusal:
            return _error(400, refusal)
        extras = features.ollama_extras(behaviour, body, chat)
        if body.get("stream", True):
            return _stream(state, behaviour, model, chat, extras)
        return _whole(state, behaviour, model, chat, extras)

    return Starlette(
        routes=[
            Route("/", root, methods=["GET", "HEAD"]),
            Route("/api/version", version, methods=["GET"]),
            Route("/api/tags", tags, methods=["GET"]),
            Route("/api/generate", generate, methods=["POST"]),
            Route("/api/chat", chat, methods=["POST"]),
        ]
    )


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _line(model: str, text: str, chat: bool, *, omit_text: bool = False) -> dict[str, Any]:
    """One answer object without the final counters."""
    data: dict[str, Any] = {"model": model, "created_at": _now()}
    if not omit_text:
        if chat:
            data["message"] = {"role": "assistant", "content": text}
        else:
            data["response"] = text
    return data


def _final(behaviour: OllamaBehaviour, model: str, text: str, chat: bool) -> dict[str, Any]:
    """The object that ends an answer: `done: true`, `done_reason`, counters, durations."""
    eval_count = max(behaviour.chunks, 1)
    eval_duration = eval_count * behaviour.eval_ns_per_token
    data = _line(model, text, chat, omit_text=behaviour.missing_fields)
    data.update(
        done=True,
        done_reason=behaviour.finish_reason,
        total_duration=eval_duration + 5_000_000,
        load_duration=1_000_000,
        prompt_eval_count=behaviour.prompt_tokens,
        prompt_eval_duration=2_000_000,
        eval_count=eval_count,
        eval_duration=eval_duration,
    )
    if not chat:
        data["context"] = [1, 2, 3]
    if behaviour.missing_fields:
        del data["done"]
    return data


def _whole(
    state: FakeState[OllamaBehaviour],
    behaviour: OllamaBehaviour,
    model: str,
    chat: bool,
    extras: features.OllamaExtras,
) -> Response:
    if behaviour.garbage:
        return Response(b"<html>502 Bad Gateway</html>", media_type="application/json")
    final = _final(behaviour, model, padded(behaviour.reply, behaviour.huge), chat)
    features.add_to_ollama_answer(final, extras, chat)
    body = json_line(final)
    paced = paced_whole(state, behaviour, body)
    if paced is not None:
        return paced  # type: ignore[return-value]
    if behaviour.drop_after is not None:
        return TruncatedResponse(body)  # type: ignore[return-value]
    if behaviour.cut_after is not None:
        body = body[: len(body) // 2]
    return Response(body, media_type="application/json")


def _stream(
    state: FakeState[OllamaBehaviour],
    behaviour: OllamaBehaviour,
    model: str,
    chat: bool,
    extras: features.OllamaExtras,
) -> Response:
    if behaviour.garbage:
        return Response(b"this is not json\n", media_type=NDJSON)

    def piece(text: str) -> bytes:
        line = _line(model, text, chat, omit_text=behaviour.missing_fields)
        if not behaviour.missing_fields:
            line["done"] = False
        if extras.logprobs:
            line["logprobs"] = features.ollama_logprobs(text, extras)
        return json_line(line)

    # Like Ollama: the reasoning streams first, tool calls come whole in a line of their own.
    head = [json_line(line) for line in features.ollama_head_lines(extras, model, chat, _now())]
    tail = [json_line(line) for line in features.ollama_call_lines(extras, model, chat, _now())]
    tail.append(json_line(_final(behaviour, model, "", chat)))
    return StreamingResponse(
        scripted_stream(
            state,
            behaviour,
            head=head,
            piece=piece,
            error=json_line({"error": behaviour.error}),
            tail=tail,
        ),
        media_type=NDJSON,
    )


def _model_entry(name: str) -> dict[str, Any]:
    """One model of /api/tags, shaped like Ollama's."""
    return {
        "name": name,
        "model": name,
        "modified_at": "2025-01-01T00:00:00Z",
        "size": 2_176_178_913,
        "digest": "a2af6cc3eb7fa8be8504abaf9b04e88f17a119ec3f04a3addf55f92841195f5a",
        "details": {
            "parent_model": "",
            "format": "gguf",
            "family": "llama",
            "families": ["llama"],
            "parameter_size": "3.2B",
            "quantization_level": "Q4_K_M",
        },
    }
