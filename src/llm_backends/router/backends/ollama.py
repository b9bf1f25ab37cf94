"""Ollama's native API: `POST /api/generate` and `POST /api/chat`, streams as NDJSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from llm_backends.router.backends import _embed, _http
from llm_backends.router.backends.base import Backend
from llm_backends.router.embeddings import BackendEmbeddings, EmbeddingRequest
from llm_backends.router.types import BackendConfig, Chunk, Completion, CompletionRequest


class OllamaBackend(Backend):
    """Talks to `ollama serve` (default port 11434)."""

    kind = "ollama"
    embeds = True

    async def embed(self, config: BackendConfig, request: EmbeddingRequest) -> BackendEmbeddings:
        """`/api/embed` (or the legacy `/api/embeddings` a client used itself)."""
        return await _embed.ollama_embed(self, config, request)

    async def complete(self, config: BackendConfig, request: CompletionRequest) -> Completion:
        url, payload = self._request(config, request, stream=False)
        body = await self.post_json(url, payload, config)
        data = _http.load_object(body, config, self.kind)
        try:
            text = data["message"]["content"] if request.is_chat else data["response"]
            done = data["done"]
        except (KeyError, TypeError) as exc:
            raise _http.invalid(f"answer lacks {exc}", config, self.kind) from exc
        if done is not True or not isinstance(text, str):
            raise _http.invalid(f"not a finished answer: {body[:80]!r}", config, self.kind)
        eval_count = data.get("eval_count")
        return Completion(
            text=text,
            finish_reason=_http.finish_reason(data.get("done_reason")),
            prompt_tokens=data.get("prompt_eval_count"),
            completion_tokens=eval_count,
            tokens_per_sec=_tokens_per_sec(eval_count, data.get("eval_duration")),
            backend_model=payload["model"],
        )

    async def stream(
        self, config: BackendConfig, request: CompletionRequest
    ) -> AsyncIterator[Chunk]:
        url, payload = self._request(config, request, stream=True)
        chat = request.is_chat
        ended = False
        lines = self.stream_lines(url, payload, config)
        async with aclosing(lines):
            async for line in lines:
                # After the done line, read on to the end only so the connection is reused.
                if ended or not line.strip():
                    continue
                data = _http.load_object(line, config, self.kind)
                try:
                    text = data["message"]["content"] if chat else data["response"]
                    done = data["done"]
                except (KeyError, TypeError) as exc:
                    raise _http.invalid(f"stream line lacks {exc}", config, self.kind) from exc
                if done is True:
                    ended = True
                    eval_count = data.get("eval_count")
                    yield Chunk(
                        text=text,
                        done=True,
                        finish_reason=_http.finish_reason(data.get("done_reason")),
                        prompt_tokens=data.get("prompt_eval_count"),
                        completion_tokens=eval_count,
                        tokens_per_sec=_tokens_per_sec(eval_count, data.get("eval_duration")),
                    )
                elif text:
                    yield Chunk(text=text)
        if not ended:
            raise _http.invalid("stream ended before done: true", config, self.kind)

    @staticmethod
    def _request(
        config: BackendConfig, request: CompletionRequest, *, stream: bool
    ) -> tuple[str, dict[str, Any]]:
        """The URL and JSON body of one call."""
        options: dict[str, Any] = {
            "temperature": request.temperature,
            "num_predict": request.max_tokens,
        }
        if request.stop:
            options["stop"] = request.stop
        payload: dict[str, Any] = {
            "model": config.backend_model or config.model_name,
            "stream": stream,
            "options": options,
        }
        if request.messages is not None:
            messages: list[Any] = request.messages
            if request.system:
                messages = [{"role": "system", "content": request.system}, *messages]
            payload["messages"] = messages
            return _http.join_url(config.endpoint_url, "/api/chat"), payload
        payload["prompt"] = request.prompt
        if request.system:
            payload["system"] = request.system
        return _http.join_url(config.endpoint_url, "/api/generate"), payload


def _tokens_per_sec(eval_count: object, eval_duration_ns: object) -> float | None:
    """Ollama's own generation speed: tokens over nanoseconds spent generating them."""
    if isinstance(eval_count, int) and isinstance(eval_duration_ns, int | float):
        if eval_duration_ns > 0:
            return eval_count / (eval_duration_ns / 1e9)
    return None
