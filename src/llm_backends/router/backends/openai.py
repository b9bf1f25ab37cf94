"""The OpenAI HTTP API as vLLM, llama.cpp, LM Studio and mlx_lm.server speak it.

`POST /v1/completions` and `POST /v1/chat/completions`; streams are server-sent events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from llm_backends.router.backends import _embed, _http
from llm_backends.router.backends.base import Backend
from llm_backends.router.embeddings import BackendEmbeddings, EmbeddingRequest
from llm_backends.router.types import (
    BackendConfig,
    Chunk,
    Completion,
    CompletionRequest,
    FinishReason,
)

_DONE = b"[DONE]"


class OpenAIBackend(Backend):
    """Any OpenAI-compatible server; `endpoint_url` is its root, with or without `/v1`."""

    kind = "openai"
    embeds = True

    async def embed(self, config: BackendConfig, request: EmbeddingRequest) -> BackendEmbeddings:
        """`/v1/embeddings`."""
        return await _embed.openai_embed(self, config, request, self.model_field(config))

    def model_field(self, config: BackendConfig) -> str | None:
        """The request's `model` value; None leaves the field out."""
        return config.backend_model or config.model_name

    async def complete(self, config: BackendConfig, request: CompletionRequest) -> Completion:
        url, payload = self._request(config, request, stream=False)
        body = await self.post_json(url, payload, config)
        data = _http.load_object(body, config, self.kind)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] if request.is_chat else choice["text"]
            usage = data.get("usage") or {}
            prompt_tokens = usage.get("prompt_tokens")
            completion_tokens = usage.get("completion_tokens")
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise _http.invalid(f"answer lacks {exc!r}", config, self.kind) from exc
        if text is not None and not isinstance(text, str):
            raise _http.invalid(f"text is {type(text).__name__}", config, self.kind)
        return Completion(
            # A chat answer of only tool calls (or nothing) has `content: null`.
            text=text or "",
            finish_reason=_http.finish_reason(choice.get("finish_reason")),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            backend_model=payload.get("model"),
        )

    async def stream(
        self, config: BackendConfig, request: CompletionRequest
    ) -> AsyncIterator[Chunk]:
        url, payload = self._request(config, request, stream=True)
        chat = request.is_chat
        ended = False
        finish: FinishReason | None = None
        prompt_tokens: int | None = None
        completion_tokens: int | None = None
        lines = self.stream_lines(url, payload, config)
        async with aclosing(lines):
            async for line in lines:
                # SSE: blank lines end events, ":" lines are comments (": keepalive"), and
                # fields other than data (event:, id:, retry:) carry nothing for us. After
                # [DONE], read on to the end only so the connection is reused.
                if ended or not line.startswith(b"data:"):
                    continue
                value = line[5:].strip()
                if value == _DONE:
                    ended = True
                    yield Chunk(
                        text="",
                        done=True,
                        finish_reason=finish or "stop",
                        prompt_tokens=prompt_tokens,
                        completion_tokens=completion_tokens,
                    )
                    continue
                text, reason, usage = self._event(value, chat, config)
                if text:
                    yield Chunk(text=text)
                if reason:
                    finish = _http.finish_reason(reason)
                if usage:
                    prompt_tokens = usage.get("prompt_tokens")
                    completion_tokens = usage.get("completion_tokens")
        if not ended:
            # No [DONE]: a clean end after a finish_reason is a lax server, otherwise a cut.
            if finish is None:
                raise _http.invalid("stream ended before [DONE]", config, self.kind)
            yield Chunk(
                text="",
                done=True,
                finish_reason=finish,
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
            )

    def _event(
        self, value: bytes, chat: bool, config: BackendConfig
    ) -> tuple[str | None, str | None, dict[str, Any] | None]:
        """Text, finish_reason and usage of one stream event (each may be absent)."""
        data = _http.load_object(value, config, self.kind)
        choices = data.get("choices")
        usage = data.get("usage")
        if choices is None and usage is None:
            raise _http.invalid(f"event without choices: {value[:80]!r}", config, self.kind)
        if usage is not None and not isinstance(usage, dict):
            raise _http.invalid(f"bad usage in event: {value[:80]!r}", config, self.kind)
        if not choices:
            # The usage-only event of include_usage has `choices: []` (or null, in vLLM).
            return None, None, usage
        try:
            choice = choices[0]
            text = (choice.get("delta") or {}).get("content") if chat else choice.get("text")
            reason = choice.get("finish_reason")
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise _http.invalid(f"bad stream event: {value[:80]!r}", config, self.kind) from exc
        if text is not None and not isinstance(text, str):
            raise _http.invalid(f"bad text in event: {value[:80]!r}", config, self.kind)
        return text, reason, usage

    def _request(
        self, config: BackendConfig, request: CompletionRequest, *, stream: bool
    ) -> tuple[str, dict[str, Any]]:
        """The URL and JSON body of one call."""
        payload: dict[str, Any] = {
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "stream": stream,
        }
        model = self.model_field(config)
        if model is not None:
            payload["model"] = model
        if request.stop:
            payload["stop"] = request.stop
        if stream:
            payload["stream_options"] = {"include_usage": True}
        root = config.endpoint_url.rstrip("/").removesuffix("/v1")
        if request.messages is not None:
            messages: list[Any] = request.messages
            if request.system:
                messages = [{"role": "system", "content": request.system}, *messages]
            payload["messages"] = messages
            return root + "/v1/chat/completions", payload
        # The completions API has no system field: the instruction goes before the prompt.
        prompt = request.prompt
        if request.system:
            prompt = f"{request.system}\n\n{prompt}"
        payload["prompt"] = prompt
        return root + "/v1/completions", payload
