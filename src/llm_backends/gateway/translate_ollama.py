"""Ollama bodies -> router requests, and router answers -> Ollama response objects.

`options` map to the neutral sampling fields (`num_predict` is max_tokens, `-1`/`-2` meaning
"the config's"); `format`, `tools`, `images`, `think`, `keep_alive`, `suffix` to the router's
features. The raw body rides along, so an `ollama` backend receives exactly what the client
sent (model and defaults aside).
"""

from __future__ import annotations

from typing import Any

from llm_backends.gateway.schemas import OllamaChatRequest, OllamaGenerateRequest, OllamaOptions
from llm_backends.gateway.translate import (
    RouterCall,
    eval_seconds,
    fields_set,
    is_plain,
    make_request,
    ollama_stats,
    ollama_timestamp,
    ollama_tool_calls,
)
from llm_backends.router.types import Result

_COMMON = ("format", "think", "keep_alive", "logprobs", "top_logprobs")
GENERATE_FEATURES = frozenset(("suffix", "images", *_COMMON))
CHAT_FEATURES = frozenset(("tools", *_COMMON))
_NO_OPTIONS = OllamaOptions()
#: Fields an ollama backend gets the same from the neutral request as from the client
#: (options too, when they hold only temperature, num_predict and stop).
_PLAIN = frozenset(("model", "messages", "prompt", "system", "stream", "options"))


def _options(options: OllamaOptions | None) -> tuple[OllamaOptions, dict[str, Any]]:
    if options is None:
        return _NO_OPTIONS, {}
    extra = options.model_extra
    return options, ({"options": extra} if extra else {})


def ollama_generate_call(body: OllamaGenerateRequest, raw: bytes) -> RouterCall:
    options, features = _options(body.options)
    features.update(fields_set(body, GENERATE_FEATURES))
    request = make_request(
        "ollama",
        raw,
        features,
        not features and is_plain(body, _PLAIN),
        prompt=body.prompt or "",
        system=body.system or None,
        temperature=options.temperature,
        max_tokens=_num_predict(options.num_predict),
        stop=options.stop or None,
    )
    # Ollama streams unless told not to; an empty prompt only loads the model.
    return RouterCall(body.model, request, body.stream is not False, load_only=not body.prompt)


def ollama_chat_call(body: OllamaChatRequest, raw: bytes) -> RouterCall:
    options, features = _options(body.options)
    features.update(fields_set(body, CHAT_FEATURES))
    messages = body.messages or []
    request = make_request(
        "ollama",
        raw,
        features,
        not features and is_plain(body, _PLAIN),
        messages=messages,
        temperature=options.temperature,
        max_tokens=_num_predict(options.num_predict),
        stop=options.stop or None,
    )
    return RouterCall(body.model, request, body.stream is not False, load_only=not messages)


def _num_predict(value: int | None) -> int | None:
    """Ollama's -1/-2 (and 0) mean "no explicit limit": the config's max_tokens applies."""
    return value if value is not None and value > 0 else None


# -- answers ------------------------------------------------------------------------------


def ollama_head(
    call: RouterCall, text: str, reasoning: str | None = None, calls: Any = ()
) -> dict[str, Any]:
    """model, created_at and the text (and reasoning, tool calls) in /api/chat's or
    /api/generate's fields."""
    data: dict[str, Any] = {"model": call.model, "created_at": ollama_timestamp()}
    if call.is_chat:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if reasoning:
            message["thinking"] = reasoning
        if calls:
            message["tool_calls"] = ollama_tool_calls(calls)
        data["message"] = message
    else:
        data["response"] = text
        if reasoning:
            data["thinking"] = reasoning
    return data


def ollama_response(call: RouterCall, result: Result, total_seconds: float) -> dict[str, Any]:
    """The one object of a `"stream": false` /api/generate or /api/chat answer."""
    data = ollama_head(call, result.response, result.reasoning, result.tool_calls)
    data["done"] = True
    # Ollama says "stop" after tool calls too.
    data["done_reason"] = "stop" if result.finish_reason == "tool_calls" else result.finish_reason
    data.update(
        ollama_stats(
            result.prompt_tokens,
            result.completion_tokens,
            total_seconds,
            eval_seconds(result.completion_tokens, result.tokens_per_sec),
        )
    )
    if result.logprobs is not None:
        data["logprobs"] = result.logprobs
    return data


def ollama_loaded(call: RouterCall) -> dict[str, Any]:
    """What Ollama answers to an empty prompt: the model is loaded, nothing is generated."""
    data = ollama_head(call, "")
    data["done"] = True
    data["done_reason"] = "load"
    return data
