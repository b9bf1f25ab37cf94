"""The OpenAI JSON, both ways: a neutral request -> a /v1/chat/completions or /v1/completions
body, and an answer or stream event -> neutral choices, tool calls, reasoning and logprobs.

Not a backend module (the underscore keeps the registry away): plain functions, no I/O.
"""

from __future__ import annotations

from typing import Any

import orjson

from llm_backends.router.messages import data_url, mint_call_id
from llm_backends.router.requests import named_tool
from llm_backends.router.types import (
    BackendConfig,
    ChatMessage,
    CompletionRequest,
    ToolCallDelta,
)

#: Neutral Sampling field -> OpenAI-server (vLLM, llama.cpp, mlx_lm.server) field.
_SAMPLING_FIELDS = (
    ("top_p", "top_p"),
    ("top_k", "top_k"),
    ("min_p", "min_p"),
    ("seed", "seed"),
    ("presence_penalty", "presence_penalty"),
    ("frequency_penalty", "frequency_penalty"),
    ("repeat_penalty", "repetition_penalty"),
)


def forwarded(
    config: BackendConfig, request: CompletionRequest, raw: bytes, model: str | None, stream: bool
) -> dict[str, Any]:
    """The client's body with only what the gateway owns changed: the model, the stream
    flag (and usage in streams, for the router's stats), the config's temperature when none
    was asked, and the token limit (the config's max_tokens when absent or above it)."""
    payload: dict[str, Any] = orjson.loads(raw)
    if model is None:
        payload.pop("model", None)
    else:
        payload["model"] = model
    payload["stream"] = stream
    if stream:
        options = payload.get("stream_options")
        payload["stream_options"] = {
            **(options if isinstance(options, dict) else {}),
            "include_usage": True,
        }
    if payload.get("temperature") is None:
        payload["temperature"] = config.temperature_default
    limit = request.effective_max_tokens(config)
    if payload.get("max_completion_tokens") is not None:
        payload["max_completion_tokens"] = limit
    else:
        payload["max_tokens"] = limit
    return payload


def add_features(
    payload: dict[str, Any],
    request: CompletionRequest,
    *,
    think_as: str = "reasoning_effort",
    native_tool_choice: bool = True,
) -> None:
    """The optional features of a rich request, in OpenAI's fields. Without native tool
    choice (mlx_lm.server ignores it), a named choice is honoured by offering only that tool."""
    sampling = request.sampling
    if sampling is not None:
        for name, field in _SAMPLING_FIELDS:
            value = getattr(sampling, name)
            if value is not None:
                payload[field] = value
    tools = request.tools
    if tools and request.tool_choice != "none":
        payload["tools"] = list(tools)
        choice = request.tool_choice
        named = named_tool(choice)
        if not native_tool_choice:
            if named:
                payload["tools"] = [t for t in tools if t["function"]["name"] == named]
        elif named:
            payload["tool_choice"] = {"type": "function", "function": {"name": named}}
        elif choice:
            payload["tool_choice"] = choice
        if request.parallel_tool_calls is not None:
            payload["parallel_tool_calls"] = request.parallel_tool_calls
    response_format = request.response_format
    if response_format is not None:
        if response_format.type == "json_schema" and response_format.schema:
            spec: dict[str, Any] = {
                "name": response_format.name or "response",
                "schema": response_format.schema,
            }
            if response_format.strict is not None:
                spec["strict"] = response_format.strict
            payload["response_format"] = {"type": "json_schema", "json_schema": spec}
        else:
            payload["response_format"] = {"type": "json_object"}
    think = request.think
    if think is not None:
        if think_as == "chat_template_kwargs":
            payload["chat_template_kwargs"] = {"enable_thinking": bool(think)}
        else:
            payload["reasoning_effort"] = "medium" if think is True else think
    if request.n > 1:
        payload["n"] = request.n
    if request.logprobs or request.top_logprobs:
        if request.messages is not None:
            payload["logprobs"] = True
            if request.top_logprobs:
                payload["top_logprobs"] = request.top_logprobs
        else:  # the completions API takes the number of alternatives as `logprobs`
            payload["logprobs"] = request.top_logprobs or 0
    if request.suffix and request.messages is None:
        payload["suffix"] = request.suffix


def message(message: ChatMessage) -> dict[str, Any]:
    """A neutral message in OpenAI's shape: images as image_url parts, tool calls with ids
    and string arguments, tool answers with the id of the call they answer."""
    out: dict[str, Any] = {"role": message["role"]}
    images = message.get("images")
    if images:
        parts: list[dict[str, Any]] = []
        if message["content"]:
            parts.append({"type": "text", "text": message["content"]})
        parts.extend({"type": "image_url", "image_url": {"url": data_url(i)}} for i in images)
        out["content"] = parts
    else:
        out["content"] = message["content"]
    if "tool_calls" in message:
        out["tool_calls"] = [call.openai() for call in message["tool_calls"]]
        if not message["content"]:
            out["content"] = None
    if message["role"] == "tool":
        out["tool_call_id"] = message.get("tool_call_id") or mint_call_id()
        if "tool_name" in message:
            out["name"] = message["tool_name"]
    return out


def tool_call_deltas(raw: object) -> tuple[ToolCallDelta, ...]:
    """A stream event's `delta.tool_calls` pieces -> neutral deltas."""
    if not isinstance(raw, list):
        return ()
    deltas: list[ToolCallDelta] = []
    for position, item in enumerate(raw):
        if not isinstance(item, dict):
            continue
        function = item.get("function") or {}
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, str):
            arguments = orjson.dumps(arguments).decode()
        index = item.get("index")
        deltas.append(
            ToolCallDelta(
                index if isinstance(index, int) else position,
                item.get("id"),
                function.get("name"),
                arguments or "",
            )
        )
    return tuple(deltas)


def reasoning(message: dict[str, Any]) -> str | None:
    """vLLM's `reasoning_content` (older) or `reasoning` (newer, and mlx_lm.server's)."""
    value = message.get("reasoning_content") or message.get("reasoning")
    return value if isinstance(value, str) and value else None


def logprobs(choice: dict[str, Any], chat: bool) -> list[dict[str, Any]] | None:
    """Chat logprobs (`logprobs.content`) as they are; completions' parallel lists
    (tokens, token_logprobs, top_logprobs) turned into the same entries."""
    raw = choice.get("logprobs")
    if not isinstance(raw, dict):
        return None
    if chat or "content" in raw:
        content = raw.get("content")
        return content if isinstance(content, list) else None
    tokens = raw.get("tokens") or []
    values = raw.get("token_logprobs") or []
    tops = raw.get("top_logprobs") or []
    entries: list[dict[str, Any]] = []
    for index, token in enumerate(tokens):
        top = tops[index] if index < len(tops) and isinstance(tops[index], dict) else {}
        entries.append(
            {
                "token": token,
                "logprob": values[index] if index < len(values) else None,
                "top_logprobs": [{"token": t, "logprob": p} for t, p in top.items()],
            }
        )
    return entries
