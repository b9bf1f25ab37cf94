"""OpenAI bodies -> router requests, and router answers -> OpenAI response objects.

Each feature field maps to the router's neutral request (`router.requests.build_request`):
`tools`, `tool_choice`, `parallel_tool_calls`, `response_format`, `reasoning_effort`,
sampling fields, `n`, `logprobs`/`top_logprobs`, `suffix`. The raw body rides along, so an
`openai` backend receives exactly what the client sent (model and defaults aside).
"""

from __future__ import annotations

from typing import Any

from llm_backends.gateway.schemas import OpenAIChatRequest, OpenAICompletionRequest
from llm_backends.gateway.translate import (
    RouterCall,
    completion_id,
    fields_set,
    is_plain,
    make_request,
    openai_tool_calls,
    stop_list,
    unix_time,
    usage,
)
from llm_backends.router.types import Choice, Result

_SAMPLING = ("top_p", "top_k", "min_p", "seed", "presence_penalty", "frequency_penalty")
CHAT_FEATURES = frozenset(
    (
        *_SAMPLING,
        "repetition_penalty",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "reasoning_effort",
        "n",
        "logprobs",
        "top_logprobs",
    )
)
COMPLETION_FEATURES = frozenset((*_SAMPLING, "repetition_penalty", "n", "suffix"))
#: Fields an openai backend gets the same from the neutral request as from the client.
_PLAIN = frozenset(("model", "messages", "prompt", "temperature", "max_tokens", "stop", "stream"))


def openai_chat_call(body: OpenAIChatRequest, raw: bytes) -> RouterCall:
    request = make_request(
        "openai",
        raw,
        fields_set(body, CHAT_FEATURES),
        is_plain(body, _PLAIN),
        messages=body.messages,
        temperature=body.temperature,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        stop=stop_list(body.stop),
    )
    return RouterCall(body.model, request, bool(body.stream), _include_usage(body.stream_options))


def openai_completion_call(body: OpenAICompletionRequest, raw: bytes) -> RouterCall:
    prompt = body.prompt if isinstance(body.prompt, str) else body.prompt[0]
    features = fields_set(body, COMPLETION_FEATURES)
    if body.logprobs is not None:
        # The completions API's `logprobs: N` = N alternatives per token.
        features["logprobs"] = True
        features["top_logprobs"] = body.logprobs
    request = make_request(
        "openai",
        raw,
        features,
        is_plain(body, _PLAIN) and isinstance(body.prompt, str),
        prompt=prompt,
        temperature=body.temperature,
        max_tokens=body.max_tokens,
        stop=stop_list(body.stop),
    )
    return RouterCall(body.model, request, bool(body.stream), _include_usage(body.stream_options))


def _include_usage(options: Any) -> bool:
    return bool(options is not None and options.include_usage)


# -- answers ------------------------------------------------------------------------------


def _choices(result: Result) -> tuple[Choice, ...]:
    if result.choices:
        return result.choices
    return (
        Choice(
            0,
            result.response,
            result.finish_reason,
            result.tool_calls,
            result.reasoning,
            result.logprobs,
        ),
    )


def chat_message(text: str, calls: Any, reasoning: str | None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = openai_tool_calls(calls)
        if not text:
            message["content"] = None
    if reasoning:
        message["reasoning_content"] = reasoning
    return message


def openai_chat_response(call: RouterCall, result: Result) -> dict[str, Any]:
    return {
        "id": completion_id("chatcmpl"),
        "object": "chat.completion",
        "created": unix_time(),
        "model": call.model,
        "choices": [
            {
                "index": choice.index,
                "message": chat_message(choice.text, choice.tool_calls, choice.reasoning),
                "logprobs": None if choice.logprobs is None else {"content": choice.logprobs},
                "finish_reason": choice.finish_reason,
            }
            for choice in _choices(result)
        ],
        "usage": usage(result.prompt_tokens, result.completion_tokens),
    }


def completion_logprobs(entries: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """Chat-shaped logprob entries -> the completions API's parallel lists."""
    if entries is None:
        return None
    return {
        "tokens": [entry.get("token") for entry in entries],
        "token_logprobs": [entry.get("logprob") for entry in entries],
        "top_logprobs": [
            {top.get("token"): top.get("logprob") for top in entry.get("top_logprobs") or ()}
            for entry in entries
        ],
        "text_offset": [],
    }


def openai_completion_response(call: RouterCall, result: Result) -> dict[str, Any]:
    return {
        "id": completion_id("cmpl"),
        "object": "text_completion",
        "created": unix_time(),
        "model": call.model,
        "choices": [
            {
                "index": choice.index,
                "text": choice.text,
                "logprobs": completion_logprobs(choice.logprobs),
                "finish_reason": choice.finish_reason,
            }
            for choice in _choices(result)
        ],
        "usage": usage(result.prompt_tokens, result.completion_tokens),
    }
