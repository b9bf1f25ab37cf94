"""Ollama's native API: `POST /api/generate` and `POST /api/chat`, streams as NDJSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any, ClassVar

from llm_backends.router import capabilities as cap
from llm_backends.router.backends import _embed, _http, _ollama_wire
from llm_backends.router.backends.base import Backend
from llm_backends.router.embeddings import BackendEmbeddings, EmbeddingRequest
from llm_backends.router.messages import answer_tool_calls
from llm_backends.router.types import (
    BackendConfig,
    Chunk,
    Completion,
    CompletionRequest,
    ToolCallDelta,
)


class OllamaBackend(Backend):
    """Talks to `ollama serve` (default port 11434)."""

    kind = "ollama"
    #: No tool_choice (a named one is honoured by sending only that tool), no n, no http
    #: image URLs (Ollama takes base64 only).
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {
            cap.TOOLS,
            cap.RESPONSE_FORMAT,
            cap.IMAGES,
            cap.PROMPT_IMAGES,
            cap.THINK,
            cap.SUFFIX,
            cap.LOGPROBS,
        }
    )
    embeds = True

    async def embed(self, config: BackendConfig, request: EmbeddingRequest) -> BackendEmbeddings:
        """`/api/embed` (or the legacy `/api/embeddings` a client used itself)."""
        return await _embed.ollama_embed(self, config, request)

    async def complete(self, config: BackendConfig, request: CompletionRequest) -> Completion:
        url, payload = self._request(config, request, stream=False)
        body = await self.post_json(url, payload, config, request.hops)
        data = _http.load_object(body, config, self.kind)
        chat = request.messages is not None
        try:
            message = data["message"] if chat else data
            text = message["content"] if chat else data["response"]
            done = data["done"]
        except (KeyError, TypeError) as exc:
            raise _http.invalid(f"answer lacks {exc}", config, self.kind) from exc
        if done is not True or not isinstance(text, str):
            raise _http.invalid(f"not a finished answer: {body[:80]!r}", config, self.kind)
        eval_count = data.get("eval_count")
        calls = answer_tool_calls(message.get("tool_calls")) if chat else ()
        thinking = message.get("thinking")
        # Positional (Completion's field order): keywords cost ~1 µs on every answer.
        return Completion(
            text,
            _finish(data.get("done_reason"), bool(calls)),
            data.get("prompt_eval_count"),  # prompt_tokens
            eval_count,  # completion_tokens
            _tokens_per_sec(eval_count, data.get("eval_duration")),
            payload["model"],  # backend_model
            calls,  # tool_calls
            thinking if isinstance(thinking, str) and thinking else None,  # reasoning
            _ollama_wire.logprobs(data.get("logprobs")),
        )

    async def stream(
        self, config: BackendConfig, request: CompletionRequest
    ) -> AsyncIterator[Chunk]:
        url, payload = self._request(config, request, stream=True)
        chat = request.is_chat
        ended = False
        calls_seen = 0
        lines = self.stream_lines(url, payload, config, request.hops)
        async with aclosing(lines):
            async for line in lines:
                # After the done line, read on to the end only so the connection is reused.
                if ended or not line.strip():
                    continue
                data = _http.load_object(line, config, self.kind)
                try:
                    message = data["message"] if chat else data
                    text = message["content"] if chat else data["response"]
                    done = data["done"]
                except (KeyError, TypeError) as exc:
                    raise _http.invalid(f"stream line lacks {exc}", config, self.kind) from exc
                thinking = message.get("thinking") or None
                deltas: tuple[ToolCallDelta, ...] = ()
                if chat and message.get("tool_calls"):
                    deltas = tuple(
                        ToolCallDelta(calls_seen + i, call.id, call.name, call.arguments)
                        for i, call in enumerate(answer_tool_calls(message["tool_calls"]))
                    )
                    calls_seen += len(deltas)
                if done is True:
                    ended = True
                    eval_count = data.get("eval_count")
                    yield Chunk(
                        text=text,
                        done=True,
                        finish_reason=_finish(data.get("done_reason"), calls_seen > 0),
                        prompt_tokens=data.get("prompt_eval_count"),
                        completion_tokens=eval_count,
                        tokens_per_sec=_tokens_per_sec(eval_count, data.get("eval_duration")),
                        reasoning=thinking,
                        tool_calls=deltas,
                        logprobs=_ollama_wire.logprobs(data.get("logprobs")),
                    )
                elif text or thinking or deltas:
                    yield Chunk(
                        text=text,
                        reasoning=thinking,
                        tool_calls=deltas,
                        logprobs=_ollama_wire.logprobs(data.get("logprobs")),
                    )
        if not ended:
            raise _http.invalid("stream ended before done: true", config, self.kind)

    @staticmethod
    def _request(
        config: BackendConfig, request: CompletionRequest, *, stream: bool
    ) -> tuple[str, dict[str, Any]]:
        """The URL and JSON body of one call."""
        payload = _ollama_wire.build_payload(config, request, stream=stream)
        path = "/api/chat" if request.messages is not None else "/api/generate"
        return _http.join_url(config.endpoint_url, path), payload


def _finish(done_reason: object, called_tools: bool) -> Any:
    """Ollama says "stop" after tool calls; OpenAI clients expect "tool_calls"."""
    reason = _http.finish_reason(done_reason)
    return "tool_calls" if called_tools and reason == "stop" else reason


def _tokens_per_sec(eval_count: object, eval_duration_ns: object) -> float | None:
    """Ollama's own generation speed: tokens over nanoseconds spent generating them."""
    if isinstance(eval_count, int) and isinstance(eval_duration_ns, int | float):
        if eval_duration_ns > 0:
            return eval_count / (eval_duration_ns / 1e9)
    return None
