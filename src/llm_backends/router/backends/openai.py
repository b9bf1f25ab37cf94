"""The OpenAI HTTP API as vLLM, llama.cpp, LM Studio and mlx_lm.server speak it.

`POST /v1/completions` and `POST /v1/chat/completions`; streams are server-sent events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any, ClassVar

from llm_backends.router import capabilities as cap
from llm_backends.router.backends import _embed, _http, _openai_wire
from llm_backends.router.backends.base import Backend
from llm_backends.router.embeddings import BackendEmbeddings, EmbeddingRequest
from llm_backends.router.messages import answer_tool_calls
from llm_backends.router.types import (
    BackendConfig,
    Choice,
    Chunk,
    Completion,
    CompletionRequest,
    FinishReason,
    ToolCall,
)

_DONE = b"[DONE]"


class OpenAIBackend(Backend):
    """Any OpenAI-compatible server; `endpoint_url` is its root, with or without `/v1`."""

    kind = "openai"
    #: vLLM's set: everything is passed on, and what a server lacks it refuses itself.
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {
            cap.TOOLS,
            cap.FORCED_TOOL_CHOICE,
            cap.RESPONSE_FORMAT,
            cap.IMAGES,
            cap.IMAGE_URLS,
            cap.THINK,
            cap.SUFFIX,
            cap.N,
            cap.LOGPROBS,
        }
    )
    #: How `think` is sent: OpenAI's `reasoning_effort`.
    think_as: ClassVar[str] = "reasoning_effort"
    embeds = True

    async def embed(self, config: BackendConfig, request: EmbeddingRequest) -> BackendEmbeddings:
        """`/v1/embeddings`."""
        return await _embed.openai_embed(self, config, request, self.model_field(config))

    def model_field(self, config: BackendConfig) -> str | None:
        """The request's `model` value; None leaves the field out."""
        return config.backend_model or config.model_name

    async def complete(self, config: BackendConfig, request: CompletionRequest) -> Completion:
        url, payload = self._request(config, request, stream=False)
        body = await self.post_json(url, payload, config, request.hops)
        data = _http.load_object(body, config, self.kind)
        chat = request.messages is not None
        try:
            raw_choices = data["choices"]
            choices: tuple[Choice, ...] = ()
            if len(raw_choices) == 1:  # the usual answer: no Choice, no list
                text, finish, calls, thinking, logprobs = _choice_fields(raw_choices[0], chat)
            else:
                choices = tuple(_choice(raw, index, chat) for index, raw in enumerate(raw_choices))
                first = choices[0]
                text, finish, calls = first.text, first.finish_reason, first.tool_calls
                thinking, logprobs = first.reasoning, first.logprobs
            usage = data.get("usage") or {}
            prompt_tokens = usage.get("prompt_tokens")
            completion_tokens = usage.get("completion_tokens")
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise _http.invalid(f"answer lacks {exc!r}", config, self.kind) from exc
        except ValueError as exc:
            raise _http.invalid(str(exc), config, self.kind) from exc
        # Positional (Completion's field order): keywords cost ~1 µs on every answer.
        return Completion(
            text,
            finish,
            prompt_tokens,
            completion_tokens,
            None,  # tokens_per_sec: OpenAI servers don't say
            payload.get("model"),  # backend_model
            calls,
            thinking,
            logprobs,
            choices,
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
        lines = self.stream_lines(url, payload, config, request.hops)
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
                chunk, reason, usage = self._event(value, chat, config)
                if chunk is not None:
                    yield chunk
                if reason and (finish is None or finish == "stop"):
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
    ) -> tuple[Chunk | None, str | None, dict[str, Any] | None]:
        """The chunk (if it carries anything), finish_reason and usage of one stream event."""
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
            reason = choice.get("finish_reason")
            if chat:
                delta = choice.get("delta") or {}
                text = delta.get("content")
                thinking = _openai_wire.reasoning(delta)
                calls = _openai_wire.tool_call_deltas(delta.get("tool_calls"))
            else:
                text, thinking, calls = choice.get("text"), None, ()
            logprobs = _openai_wire.logprobs(choice, chat)
            index = choice.get("index") or 0
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise _http.invalid(f"bad stream event: {value[:80]!r}", config, self.kind) from exc
        if text is not None and not isinstance(text, str):
            raise _http.invalid(f"bad text in event: {value[:80]!r}", config, self.kind)
        if not (text or thinking or calls or logprobs):
            return None, reason, usage
        chunk = Chunk(
            text=text or "",
            reasoning=thinking,
            tool_calls=calls,
            logprobs=logprobs,
            index=index if isinstance(index, int) else 0,
        )
        return chunk, reason, usage

    def _request(
        self, config: BackendConfig, request: CompletionRequest, *, stream: bool
    ) -> tuple[str, dict[str, Any]]:
        """The URL and JSON body of one call."""
        root = config.endpoint_url.rstrip("/").removesuffix("/v1")
        path = "/v1/chat/completions" if request.messages is not None else "/v1/completions"
        passthrough = request.passthrough
        model = self.model_field(config)
        if passthrough is not None and passthrough.protocol == "openai" and self.forwards:
            return root + path, _openai_wire.forwarded(
                config, request, passthrough.body, model, stream
            )
        payload: dict[str, Any] = {
            "temperature": request.effective_temperature(config),
            "max_tokens": request.effective_max_tokens(config),
            "stream": stream,
        }
        if model is not None:
            payload["model"] = model
        if request.stop:
            payload["stop"] = request.stop
        if stream:
            payload["stream_options"] = {"include_usage": True}
        if request.rich:
            _openai_wire.add_features(
                payload,
                request,
                think_as=self.think_as,
                native_tool_choice=cap.FORCED_TOOL_CHOICE in self.capabilities,
            )
        if request.messages is not None:
            messages: list[Any] = request.messages
            if request.rich:
                messages = [_openai_wire.message(message) for message in messages]
            if request.system:
                messages = [{"role": "system", "content": request.system}, *messages]
            payload["messages"] = messages
            return root + path, payload
        # The completions API has no system field: the instruction goes before the prompt.
        prompt = request.prompt
        if request.system:
            prompt = f"{request.system}\n\n{prompt}"
        payload["prompt"] = prompt
        return root + path, payload

    #: Whether an OpenAI client's own body is forwarded as it is (same protocol on both
    #: sides). mlx_lm.server is a different server with its own limits: it is translated.
    forwards: ClassVar[bool] = True


def _choice(raw: dict[str, Any], position: int, chat: bool) -> Choice:
    index = raw.get("index")
    return Choice(  # positional (Choice's field order): keywords cost ~0.5 µs per choice
        index if isinstance(index, int) else position, *_choice_fields(raw, chat)
    )


def _choice_fields(
    raw: dict[str, Any], chat: bool
) -> tuple[str, FinishReason, tuple[ToolCall, ...], str | None, list[dict[str, Any]] | None]:
    """A choice's text, finish_reason, tool_calls, reasoning and logprobs (Choice's order)."""
    if chat:
        message = raw["message"]
        text = message.get("content")
        calls = answer_tool_calls(message.get("tool_calls"))
        thinking = _openai_wire.reasoning(message)
    else:
        text, calls, thinking = raw["text"], (), None
    if text is not None and not isinstance(text, str):
        raise ValueError(f"text is {type(text).__name__}")
    return (
        # A chat answer of only tool calls (or nothing) has `content: null`.
        text or "",
        _http.finish_reason(raw.get("finish_reason")),
        calls,
        thinking,
        # Most answers carry `logprobs: null` (or none): no call to find that out.
        None if raw.get("logprobs") is None else _openai_wire.logprobs(raw, chat),
    )
