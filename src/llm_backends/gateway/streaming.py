"""Streamed answers: router chunks -> SSE (OpenAI) or NDJSON (Ollama) bytes.

A stream either ends with its protocol's terminator (`data: [DONE]`, a `"done": true` line) or,
if the backend fails after the first byte, with an explicit error event: never a cut that
looks complete. Whatever ends the response (the end, an error, the client going away), the
routed stream is closed, which closes the upstream HTTP request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any, Protocol

import anyio
import orjson
import structlog
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from llm_backends.gateway.disconnect import (
    CancelOnDisconnect,
    ClientDisconnected,
    DisconnectWatch,
)
from llm_backends.gateway.errors import GatewayError, error_body, from_router_error
from llm_backends.gateway.errors import Protocol as WireProtocol
from llm_backends.gateway.translate import (
    RouterCall,
    completion_id,
    eval_seconds,
    ollama_stats,
    unix_time,
    usage,
)
from llm_backends.gateway.translate_ollama import ollama_head
from llm_backends.gateway.translate_openai import completion_logprobs
from llm_backends.router.errors import LLMRouterError
from llm_backends.router.messages import mint_call_id
from llm_backends.router.streaming import RoutedStream
from llm_backends.router.types import Chunk, ToolCall, ToolCallDelta
from llm_backends.shutdown import is_shutdown_cut

log = structlog.get_logger("llm_backends.gateway")

SSE = "text/event-stream"
NDJSON = "application/x-ndjson"
#: Every stream's: no caching, and no buffering by a proxy in front (nginx honours it).
STREAM_HEADERS = ((b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no"))

_DONE = b"data: [DONE]\n\n"
_SSE_TYPE = b"text/event-stream; charset=utf-8"

#: How a stream ended, for metrics: "200" complete, "502"/"504"/... failed mid-way, "499"
#: the client went away first.
OnEnd = Callable[[str, GatewayError | None], None]


class StreamEncoder(Protocol):
    media_type: str

    def chunk(self, chunk: Chunk) -> bytes:
        """The bytes of one chunk; the `done` chunk also ends the stream in protocol terms."""
        ...

    def error(self, error: GatewayError) -> bytes:
        """The protocol's in-stream error event."""
        ...


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


class OpenAIEncoder:
    """`chat.completion.chunk` events (deltas), or `text_completion` events for /v1/completions.

    Reasoning goes out as `delta.reasoning_content`; tool calls as `delta.tool_calls` pieces
    with their `index` (the first piece of a call has its id, minted if the backend gave
    none, and its name; later pieces more arguments).
    """

    media_type = SSE

    def __init__(self, call: RouterCall) -> None:
        self._chat = call.is_chat
        self._include_usage = call.include_usage
        self._started = False
        self._calls_seen: set[int] = set()
        #: Choice indexes other than 0 seen (n > 1): each gets its own finish event.
        self._choices: set[int] = set()
        self._envelope: dict[str, Any] = {
            "id": completion_id("chatcmpl" if self._chat else "cmpl"),
            "object": "chat.completion.chunk" if self._chat else "text_completion",
            "created": unix_time(),
            "model": call.model,
        }
        #: Every event's bytes up to its choice: the envelope is rendered once per stream.
        self._head = b"data: " + orjson.dumps(self._envelope)[:-1] + b',"choices":['

    def chunk(self, chunk: Chunk) -> bytes:
        parts: list[bytes] = []
        plain = chunk.reasoning is None and not chunk.tool_calls and chunk.logprobs is None
        if not self._started:
            self._started = True
            # The first event of a chat stream names the role, as OpenAI's does.
            if self._chat:
                delta: dict[str, Any] = {"role": "assistant", "content": chunk.text}
                if not plain:
                    self._extend(delta, chunk)
                parts.append(self._event(chunk, None, delta))
            elif chunk.text or not plain:
                parts.append(self._event(chunk, None))
        elif chunk.text or not plain:
            delta = {"content": chunk.text} if plain else self._extend({}, chunk)
            parts.append(self._event(chunk, None, delta if self._chat else None))
        if chunk.index:
            self._choices.add(chunk.index)
        if chunk.done:
            reason = chunk.finish_reason or "stop"
            parts.append(self._end(reason))
            parts.extend(self._end(reason, index) for index in sorted(self._choices))
            if self._include_usage:
                usage_event = {
                    **self._envelope,
                    "choices": [],
                    "usage": usage(chunk.prompt_tokens, chunk.completion_tokens),
                }
                parts.append(_sse(usage_event))
            parts.append(_DONE)
        return b"".join(parts)

    def error(self, error: GatewayError) -> bytes:
        return b"data: " + error_body(WireProtocol.OPENAI, error) + b"\n\n"

    def _extend(self, delta: dict[str, Any], chunk: Chunk) -> dict[str, Any]:
        if chunk.text or "content" not in delta:
            delta["content"] = chunk.text or None
        if chunk.reasoning:
            delta["reasoning_content"] = chunk.reasoning
        if chunk.tool_calls:
            delta["tool_calls"] = [self._call(piece) for piece in chunk.tool_calls]
        return delta

    def _call(self, piece: ToolCallDelta) -> dict[str, Any]:
        out: dict[str, Any] = {"index": piece.index}
        function: dict[str, Any] = {"arguments": piece.arguments}
        if piece.index not in self._calls_seen:
            self._calls_seen.add(piece.index)
            out["id"] = piece.id or mint_call_id()
            out["type"] = "function"
            function["name"] = piece.name or ""
        out["function"] = function
        return out

    def _end(self, finish_reason: str, index: int = 0) -> bytes:
        if self._calls_seen and finish_reason == "stop":
            finish_reason = "tool_calls"
        choice: dict[str, Any] = {"index": index}
        if self._chat:
            choice["delta"] = {}
        else:
            choice["text"] = ""
        choice["logprobs"] = None
        choice["finish_reason"] = finish_reason
        return self._head + orjson.dumps(choice) + b"]}\n\n"

    def _event(self, chunk: Chunk, finish_reason: str | None, delta: Any = None) -> bytes:
        choice: dict[str, Any] = {"index": chunk.index}
        if self._chat:
            choice["delta"] = {"content": chunk.text} if delta is None else delta
            logprobs = None if chunk.logprobs is None else {"content": chunk.logprobs}
        else:
            choice["text"] = chunk.text
            logprobs = completion_logprobs(chunk.logprobs)
        choice["logprobs"] = logprobs
        choice["finish_reason"] = finish_reason
        return self._head + orjson.dumps(choice) + b"]}\n\n"


class OllamaEncoder:
    """NDJSON lines of /api/generate or /api/chat; the last carries the counters and timings.

    Reasoning goes out as `thinking`. Ollama clients expect whole tool calls: pieces are
    gathered and sent, complete, in one line just before the last.
    """

    media_type = NDJSON

    def __init__(self, call: RouterCall, started: float) -> None:
        self._call = call
        self._started = started
        self._first_at: float | None = None
        self._calls: dict[int, list[str]] = {}

    def chunk(self, chunk: Chunk) -> bytes:
        now = time.perf_counter()
        if self._first_at is None:
            self._first_at = now
        for piece in chunk.tool_calls:
            self._gather(piece)
        if not chunk.done:
            data = ollama_head(self._call, chunk.text, chunk.reasoning)
            data["done"] = False
            if chunk.logprobs is not None:
                data["logprobs"] = chunk.logprobs
            return orjson.dumps(data) + b"\n"
        lines = b""
        if self._calls:
            calls = [ToolCall(c[0], c[1], c[2]) for c in self._calls.values()]
            data = ollama_head(self._call, "", None, calls)
            data["done"] = False
            lines = orjson.dumps(data) + b"\n"
        data = ollama_head(self._call, chunk.text, chunk.reasoning)
        data["done"] = True
        reason = chunk.finish_reason or "stop"
        data["done_reason"] = "stop" if reason == "tool_calls" else reason
        # Without the backend's own speed, generation is the span from first to last chunk.
        generating = eval_seconds(chunk.completion_tokens, chunk.tokens_per_sec)
        data.update(
            ollama_stats(
                chunk.prompt_tokens,
                chunk.completion_tokens,
                now - self._started,
                now - self._first_at if generating is None else generating,
            )
        )
        return lines + orjson.dumps(data) + b"\n"

    def _gather(self, piece: ToolCallDelta) -> None:
        call = self._calls.get(piece.index)
        if call is None:
            call = self._calls[piece.index] = [piece.id or mint_call_id(), piece.name or "", ""]
        elif piece.name and not call[1]:
            call[1] = piece.name
        call[2] += piece.arguments

    def error(self, error: GatewayError) -> bytes:
        return error_body(WireProtocol.OLLAMA, error) + b"\n"


def _incomplete() -> GatewayError:
    return GatewayError(
        502, "the backend stream ended without its final chunk", code="invalid_backend_response"
    )


def _shutting_down() -> GatewayError:
    return GatewayError(
        503, "the server is shutting down: stream ended at its grace period", code="server_shutdown"
    )


async def stream_body(
    routed: RoutedStream, first: Chunk, encoder: StreamEncoder, on_end: OnEnd
) -> AsyncGenerator[bytes, None]:
    """The response body: every chunk encoded, then the end or an error event.

    The routed stream is read to its natural end (not just to the `done` chunk) so the
    router records the request's stats; it is closed in all cases, shielded from the
    cancellation that a client disconnect brings, so the upstream request always ends.
    """
    status = "499"  # until the stream is known to have ended otherwise
    failure: GatewayError | None = None
    ended = False
    try:
        try:
            yield encoder.chunk(first)
            done = first.done
            async for chunk in routed:
                if not done:
                    done = chunk.done
                    yield encoder.chunk(chunk)
            ended = True
            if not done:
                raise _incomplete()
        except LLMRouterError as error:
            failure = from_router_error(error)
        except GatewayError as error:
            failure = error
        except asyncio.CancelledError as error:
            if not is_shutdown_cut(error):
                raise
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            failure = _shutting_down()
        except Exception:  # a bug still ends the stream with an error event, not a cut
            log.exception("gateway_stream_failed", model=routed.model, backend=routed.backend)
            failure = GatewayError(500, "internal gateway error", code="internal_error")
        if failure is not None:
            status = str(failure.status)
            yield encoder.error(failure)
        else:
            status = "200"
    finally:
        if ended:
            await routed.aclose()  # its generator has returned: nothing to wait for
        else:
            with anyio.CancelScope(shield=True):
                await routed.aclose()
        on_end(status, failure)


class RoutedStreamingResponse(Response):
    """A streamed answer that always closes its body generator, and with it the upstream.

    Starlette's StreamingResponse (for servers on ASGI spec < 2.4, uvicorn among them) runs
    every stream in an anyio task group with a second task listening for the disconnect, and
    leaves the generator to the garbage collector. Here the disconnect watch is
    `CancelOnDisconnect` (no task at all for a stream that ends within 50 ms: ~0.1 ms less
    time to first byte at one client), the header list is the caller's, final (no header
    dict to convert on the way to the first byte), and the generator is closed at the end,
    whatever ends it, so the upstream request ends right away. The request body must have
    been read (the gateway's has).
    """

    def __init__(
        self,
        body: AsyncGenerator[bytes, None],
        *,
        media_type: str,
        headers: list[tuple[bytes, bytes]],
        watch: DisconnectWatch,
    ) -> None:
        self._watch = watch
        self.status_code = 200
        self.media_type = media_type
        self.background = None
        self.raw_headers = [
            *headers,
            *STREAM_HEADERS,
            (b"content-type", _content_type(media_type)),
        ]
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = self._body
        try:
            # The headers and the first chunk (already in hand: the body's first step never
            # waits) go out before the disconnect watch is set up, not after.
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            first = await anext(body)
            await send({"type": "http.response.body", "body": first, "more_body": True})
            async with CancelOnDisconnect(receive, self._watch):
                async for chunk in body:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except ClientDisconnected:
            pass  # nobody is left to answer; the body is closed below
        finally:
            await close_shielded(self._body)


def _content_type(media_type: str) -> bytes:
    """As Starlette writes it: text types name their charset."""
    if media_type == SSE:
        return _SSE_TYPE
    if media_type.startswith("text/"):
        return f"{media_type}; charset=utf-8".encode()
    return media_type.encode()


async def close_shielded(body: AsyncGenerator[bytes, None]) -> None:
    """Close a body generator even under cancellation. One that has returned (the usual
    end) has nothing left to run: closing it cannot suspend, so it needs no cancel scope,
    which costs more than the rest of the close."""
    if body.ag_frame is None:
        await body.aclose()
        return
    with anyio.CancelScope(shield=True):
        await body.aclose()


async def first_chunk(routed: AsyncIterator[Chunk]) -> Chunk:
    """The first chunk; a stream without one is a backend protocol failure."""
    try:
        return await anext(routed)
    except StopAsyncIteration:
        raise _incomplete() from None
