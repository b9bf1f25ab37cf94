"""Protocol translation as plain functions: client request -> router call, router answer ->
client response object. Nothing here does I/O, so each direction is unit-testable.

The router speaks one neutral dialect (`Result`, `Chunk`: text, finish_reason, token counts,
tokens/s), so any client protocol meets any backend: an Ollama client answered by MLX gets
`done_reason` and nanosecond timings, an OpenAI client answered by Ollama gets `usage` and
`finish_reason`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from llm_backends.gateway.schemas import (
    OllamaChatRequest,
    OllamaGenerateRequest,
    OllamaOptions,
    OpenAIChatRequest,
    OpenAICompletionRequest,
    OpenAIMessage,
    StreamOptions,
)
from llm_backends.router.types import ChatMessage, Result

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class RouterCall:
    """One generation as the router takes it. Exactly one of prompt/messages is set."""

    model: str
    prompt: str | None = None
    messages: list[ChatMessage] | None = None
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    stream: bool = False
    #: OpenAI: send a usage chunk before [DONE] (`stream_options.include_usage`).
    include_usage: bool = False
    #: Ollama: an empty prompt only loads the model; answered without calling a backend.
    load_only: bool = False

    @property
    def is_chat(self) -> bool:
        return self.messages is not None


# -- requests -----------------------------------------------------------------------------


def openai_chat_call(body: OpenAIChatRequest) -> RouterCall:
    return RouterCall(
        model=body.model,
        messages=[_openai_message(message) for message in body.messages],
        temperature=body.temperature,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        stop=_stop_list(body.stop),
        stream=bool(body.stream),
        include_usage=_include_usage(body.stream_options),
    )


def openai_completion_call(body: OpenAICompletionRequest) -> RouterCall:
    prompt = body.prompt if isinstance(body.prompt, str) else body.prompt[0]
    return RouterCall(
        model=body.model,
        prompt=prompt,
        temperature=body.temperature,
        max_tokens=body.max_tokens,
        stop=_stop_list(body.stop),
        stream=bool(body.stream),
        include_usage=_include_usage(body.stream_options),
    )


def ollama_generate_call(body: OllamaGenerateRequest) -> RouterCall:
    options = body.options or _NO_OPTIONS
    return RouterCall(
        model=body.model,
        prompt=body.prompt or "",
        system=body.system or None,
        temperature=options.temperature,
        max_tokens=_num_predict(options.num_predict),
        stop=options.stop or None,
        # Ollama streams unless told not to.
        stream=body.stream is not False,
        load_only=not body.prompt,
    )


def ollama_chat_call(body: OllamaChatRequest) -> RouterCall:
    options = body.options or _NO_OPTIONS
    messages: list[ChatMessage] = [
        {"role": message.role, "content": message.content or ""} for message in body.messages or ()
    ]
    return RouterCall(
        model=body.model,
        messages=messages,
        temperature=options.temperature,
        max_tokens=_num_predict(options.num_predict),
        stop=options.stop or None,
        stream=body.stream is not False,
        load_only=not messages,
    )


_NO_OPTIONS = OllamaOptions()


def _openai_message(message: OpenAIMessage) -> ChatMessage:
    content = message.content
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    else:
        text = "".join(part.text for part in content)
    # "developer" is the newer name of "system"; backends other than OpenAI only know the latter.
    role = "system" if message.role == "developer" else message.role
    return {"role": role, "content": text}


def _stop_list(stop: str | Sequence[str] | None) -> list[str] | None:
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    return list(stop) or None


def _include_usage(options: StreamOptions | None) -> bool:
    return bool(options is not None and options.include_usage)


def _num_predict(value: int | None) -> int | None:
    """Ollama's -1/-2 (and 0) mean "no explicit limit": the config's max_tokens applies."""
    return value if value is not None and value > 0 else None


# -- responses ----------------------------------------------------------------------------


def completion_id(prefix: str) -> str:
    return f"{prefix}-{os.urandom(12).hex()}"


def unix_time() -> int:
    return int(time.time())


def ollama_timestamp() -> str:
    """Ollama's `created_at`: RFC 3339 in UTC with a Z."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def usage(prompt_tokens: int | None, completion_tokens: int | None) -> dict[str, int] | None:
    """OpenAI `usage`; None when the backend reported no counts at all."""
    if prompt_tokens is None and completion_tokens is None:
        return None
    prompt = prompt_tokens or 0
    completion = completion_tokens or 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def ollama_stats(
    prompt_tokens: int | None,
    completion_tokens: int | None,
    total_seconds: float,
    eval_seconds: float | None,
) -> dict[str, int]:
    """Ollama's counters and nanosecond durations from what any backend tells the router.

    `eval_seconds` is the time spent generating (from the backend's own tokens/s, or the span
    between first and last chunk); the rest of `total_seconds` is reported as prompt
    evaluation. Nothing is loaded by the gateway, so load_duration is 0.
    """
    measured = max(int(total_seconds * NS_PER_S), 1)
    generating = measured if eval_seconds is None else max(int(eval_seconds * NS_PER_S), 1)
    # A backend's own generation time is kept as it reported it; the total covers it.
    total = max(measured, generating)
    stats = {
        "total_duration": total,
        "load_duration": 0,
        "prompt_eval_duration": total - generating,
        "eval_duration": generating,
    }
    if prompt_tokens is not None:
        stats["prompt_eval_count"] = prompt_tokens
    if completion_tokens is not None:
        stats["eval_count"] = completion_tokens
    return stats


def eval_seconds(completion_tokens: int | None, tokens_per_sec: float | None) -> float | None:
    """Generation time implied by a backend's tokens/s (Ollama reports it; others don't)."""
    if completion_tokens and tokens_per_sec:
        return completion_tokens / tokens_per_sec
    return None


def openai_chat_response(call: RouterCall, result: Result) -> dict[str, Any]:
    return {
        "id": completion_id("chatcmpl"),
        "object": "chat.completion",
        "created": unix_time(),
        "model": call.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.response},
                "logprobs": None,
                "finish_reason": result.finish_reason,
            }
        ],
        "usage": usage(result.prompt_tokens, result.completion_tokens),
    }


def openai_completion_response(call: RouterCall, result: Result) -> dict[str, Any]:
    return {
        "id": completion_id("cmpl"),
        "object": "text_completion",
        "created": unix_time(),
        "model": call.model,
        "choices": [
            {
                "index": 0,
                "text": result.response,
                "logprobs": None,
                "finish_reason": result.finish_reason,
            }
        ],
        "usage": usage(result.prompt_tokens, result.completion_tokens),
    }


def ollama_response(call: RouterCall, result: Result, total_seconds: float) -> dict[str, Any]:
    """The one object of a `"stream": false` /api/generate or /api/chat answer."""
    data = ollama_head(call, result.response)
    data["done"] = True
    data["done_reason"] = result.finish_reason
    data.update(
        ollama_stats(
            result.prompt_tokens,
            result.completion_tokens,
            total_seconds,
            eval_seconds(result.completion_tokens, result.tokens_per_sec),
        )
    )
    return data


def ollama_head(call: RouterCall, text: str) -> dict[str, Any]:
    """model, created_at and the text, in /api/chat's or /api/generate's field."""
    data: dict[str, Any] = {"model": call.model, "created_at": ollama_timestamp()}
    if call.is_chat:
        data["message"] = {"role": "assistant", "content": text}
    else:
        data["response"] = text
    return data


def ollama_loaded(call: RouterCall) -> dict[str, Any]:
    """What Ollama answers to an empty prompt: the model is loaded, nothing is generated."""
    data = ollama_head(call, "")
    data["done"] = True
    data["done_reason"] = "load"
    return data
