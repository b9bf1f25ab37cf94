"""Ollama's native JSON, both ways: a neutral request -> the /api/chat or /api/generate body,
and an answer object or stream line -> neutral text, reasoning, tool calls and logprobs.

Not a backend module (the underscore keeps the registry away): plain functions, no I/O.
"""

from __future__ import annotations

from typing import Any

import orjson

from llm_backends.router.requests import named_tool
from llm_backends.router.types import (
    BackendConfig,
    ChatMessage,
    CompletionRequest,
)

#: Neutral Sampling fields that are Ollama options of the same name.
_OPTION_FIELDS = (
    "top_p",
    "top_k",
    "min_p",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "repeat_penalty",
    "num_ctx",
)


def build_payload(
    config: BackendConfig, request: CompletionRequest, *, stream: bool
) -> dict[str, Any]:
    """The body of one call (without the URL); the client's own body when it spoke Ollama."""
    passthrough = request.passthrough
    if passthrough is not None and passthrough.protocol == "ollama":
        return _forwarded(config, request, passthrough.body, stream)
    options: dict[str, Any] = {
        "temperature": request.effective_temperature(config),
        "num_predict": request.effective_max_tokens(config),
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
        if request.rich:
            messages = [_message(message) for message in messages]
        if request.system:
            messages = [{"role": "system", "content": request.system}, *messages]
        payload["messages"] = messages
    else:
        payload["prompt"] = request.prompt
        if request.system:
            payload["system"] = request.system
    if request.rich:
        _features(payload, options, request)
    return payload


def _forwarded(
    config: BackendConfig, request: CompletionRequest, raw: bytes, stream: bool
) -> dict[str, Any]:
    """The client's body with only what the gateway owns changed: the model, the stream
    flag this call needs, the config's temperature when none was asked, and num_predict
    (the config's max_tokens when absent, "no limit" (<= 0) or above it)."""
    payload: dict[str, Any] = orjson.loads(raw)
    payload["model"] = config.backend_model or config.model_name
    payload["stream"] = stream
    options = payload.get("options")
    if not isinstance(options, dict):
        options = payload["options"] = {}
    if options.get("temperature") is None:
        options["temperature"] = config.temperature_default
    options["num_predict"] = request.effective_max_tokens(config)
    return payload


def _features(payload: dict[str, Any], options: dict[str, Any], request: CompletionRequest) -> None:
    sampling = request.sampling
    if sampling is not None:
        for name in _OPTION_FIELDS:
            value = getattr(sampling, name)
            if value is not None:
                options[name] = value
        options.update(sampling.extra)
    tools = request.tools
    if tools and request.tool_choice != "none":
        named = named_tool(request.tool_choice)
        # Ollama has no tool_choice: a named choice is honoured by offering only that tool.
        payload["tools"] = (
            [t for t in tools if t["function"]["name"] == named] if named else list(tools)
        )
    response_format = request.response_format
    if response_format is not None:
        schema = response_format.schema
        payload["format"] = schema if response_format.type == "json_schema" and schema else "json"
    if request.think is not None:
        payload["think"] = request.think
    if request.keep_alive is not None:
        payload["keep_alive"] = request.keep_alive
    if request.suffix:
        payload["suffix"] = request.suffix
    if request.images:
        payload["images"] = list(request.images)
    if request.logprobs or request.top_logprobs:
        payload["logprobs"] = True
        if request.top_logprobs:
            payload["top_logprobs"] = request.top_logprobs


def _message(message: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message["role"], "content": message["content"]}
    if "images" in message:
        out["images"] = message["images"]
    if "tool_calls" in message:
        out["tool_calls"] = [
            {"id": call.id, "function": {"name": call.name, "arguments": call.parsed_arguments()}}
            for call in message["tool_calls"]
        ]
    if "tool_name" in message:
        out["tool_name"] = message["tool_name"]
    if "thinking" in message:
        out["thinking"] = message["thinking"]
    return out


def logprobs(raw: object) -> list[dict[str, Any]] | None:
    """Ollama's `logprobs` entries (token, logprob, top_logprobs) have OpenAI's chat shape."""
    return raw if isinstance(raw, list) else None
