"""Build the one `CompletionRequest` from keyword arguments, as the library and the gateway
translators both do. Default and empty values are absent values (`tools=[]`, `format=""`,
`options={}`, `think=False`, `n=1`, `logprobs=None`, `seed=None`), because real clients send
them on every call and a backend that cannot honour a feature must not refuse its absence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llm_backends.router.messages import InvalidRequest, image_from_url, neutral_messages
from llm_backends.router.types import (
    ChatMessage,
    CompletionRequest,
    Passthrough,
    ResponseFormat,
    Sampling,
)

Stop = str | Sequence[str] | None

#: Ollama option -> the neutral Sampling field of the same meaning.
_SAMPLING_OPTIONS = (
    "top_p",
    "top_k",
    "min_p",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "repeat_penalty",
    "num_ctx",
)
#: Ollama options handled outside `Sampling`.
_OWN_OPTIONS = frozenset(("temperature", "num_predict", "stop"))
#: The keyword arguments `build_request` understands (the library's feature arguments).
FEATURES = frozenset(
    (
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "response_format",
        "format",
        "images",
        "think",
        "reasoning_effort",
        "options",
        "keep_alive",
        "suffix",
        "n",
        "logprobs",
        "top_logprobs",
        "repetition_penalty",
        *_SAMPLING_OPTIONS,
    )
)


def stop_list(stop: Stop) -> list[str] | None:
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    return list(stop) or None


def library_request(
    prompt: str | None,
    messages: Sequence[Mapping[str, Any]] | None,
    temperature: float | None,
    max_tokens: int | None,
    system: str | None,
    stop: Stop,
    features: dict[str, Any],
) -> CompletionRequest:
    """The request of a library call (`generate`'s or `chat`'s arguments). A plain prompt is
    built here, with no keyword call to `build_request` (~0.3 µs of every library call)."""
    if messages is None and stop is None and not features:
        return CompletionRequest(prompt, None, system, temperature, max_tokens, None)
    return build_request(
        prompt=prompt,
        messages=messages,
        temperature=temperature,
        max_tokens=max_tokens,
        system=system,
        stop=stop,
        **features,
    )


def build_request(
    *,
    prompt: str | None = None,
    messages: Sequence[Mapping[str, Any]] | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    system: str | None = None,
    stop: Stop = None,
    passthrough: Passthrough | None = None,
    hops: tuple[str, ...] = (),
    session: str | None = None,
    **features: Any,
) -> CompletionRequest:
    """A request from the library's arguments; raises InvalidRequest naming a bad field.

    `passthrough` is the gateway's: the client's raw body, for a backend of its protocol.
    `session` names a conversation for fleet affinity (router/affinity.py).
    """
    rich = False
    neutral: list[ChatMessage] | None = None
    if messages is not None:
        neutral, rich = neutral_messages(messages)
    stops = stop_list(stop)
    if not features:
        if not hops and passthrough is None and not rich and session is None:
            # A library call: positional, no keywords (on a 24-field init they cost ~1 µs).
            return CompletionRequest(prompt, neutral, system, temperature, max_tokens, stops)
        return CompletionRequest(
            prompt,
            neutral,
            system,
            temperature,
            max_tokens,
            stops,
            hops=hops,
            passthrough=passthrough,
            rich=rich,
            session=session,
        )
    unknown = features.keys() - FEATURES
    if unknown:
        raise TypeError(f"unexpected keyword arguments: {', '.join(sorted(unknown))}")
    sampling_args: dict[str, Any] = {}
    options = features.get("options")
    extra: dict[str, Any] = {}
    if options:
        if not isinstance(options, Mapping):
            raise InvalidRequest("options: expected an object", "options")
        for key, value in options.items():
            if value is None:
                continue
            if key == "temperature" and temperature is None:
                temperature = value
            elif key == "num_predict" and max_tokens is None:
                max_tokens = value if isinstance(value, int) and value > 0 else None
            elif key == "stop" and stops is None:
                stops = stop_list(value)
            elif key in _SAMPLING_OPTIONS:
                sampling_args[key] = value
            elif key not in _OWN_OPTIONS:
                extra[key] = value
    for key in _SAMPLING_OPTIONS:
        if features.get(key) is not None:
            sampling_args[key] = features[key]
    if features.get("repetition_penalty") is not None:
        sampling_args["repeat_penalty"] = features["repetition_penalty"]
    sampling = Sampling(**sampling_args, extra=extra) if sampling_args or extra else None
    tools = tuple(_tool(tool, i) for i, tool in enumerate(features.get("tools") or ()))
    images = tuple(_image(image, i) for i, image in enumerate(features.get("images") or ()))
    n = features.get("n") or 1
    request = CompletionRequest(
        prompt=prompt,
        messages=neutral,
        system=system,
        temperature=temperature,
        max_tokens=max_tokens,
        stop=stops,
        suffix=features.get("suffix") or None,
        images=images,
        tools=tools,
        tool_choice=tool_choice(features.get("tool_choice")),
        parallel_tool_calls=features.get("parallel_tool_calls"),
        response_format=response_format(features.get("response_format"), features.get("format")),
        think=think(features.get("think"), features.get("reasoning_effort")),
        sampling=sampling,
        keep_alive=features.get("keep_alive"),
        n=n,
        logprobs=bool(features.get("logprobs")),
        top_logprobs=features.get("top_logprobs") or None,
        hops=hops,
        passthrough=passthrough,
        session=session,
    )
    if request.tool_choice is not None and not tools:
        # OpenAI refuses a tool_choice without tools; "none"/"auto" alone mean nothing.
        if request.tool_choice not in ("none", "auto"):
            raise InvalidRequest("tool_choice: set without any tools", "tool_choice")
    rich = rich or bool(
        request.suffix
        or images
        or tools
        or request.tool_choice
        or request.parallel_tool_calls is not None
        or request.response_format
        or request.think is not None
        or sampling
        or request.keep_alive is not None
        or n != 1
        or request.logprobs
        or request.top_logprobs
    )
    request.rich = rich
    return request


def _tool(tool: object, index: int) -> dict[str, Any]:
    """A tool in OpenAI's (and Ollama's) shape: {"type": "function", "function": {...}}."""
    if isinstance(tool, Mapping):
        function = tool.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return {"type": "function", "function": dict(function)}
    raise InvalidRequest(
        f"tools.{index}: expected {{'type': 'function', 'function': {{'name', ...}}}}",
        f"tools.{index}",
    )


def _image(image: object, index: int) -> str:
    if isinstance(image, bytes):
        import base64

        return base64.b64encode(image).decode()
    if isinstance(image, str):
        return image_from_url(image, f"images.{index}") if image.startswith("data:") else image
    raise InvalidRequest(f"images.{index}: expected base64 text or bytes", f"images.{index}")


def tool_choice(value: object) -> str | None:
    """OpenAI's "auto" | "none" | "required" | {"type": "function", "function": {"name"}}."""
    if value is None or value == "auto":
        return None if value is None else "auto"
    if value in ("none", "required"):
        return str(value)
    if isinstance(value, Mapping):
        function = value.get("function")
        if isinstance(function, Mapping) and isinstance(function.get("name"), str):
            return "function:" + function["name"]
    if isinstance(value, str) and value:
        return "function:" + value
    raise InvalidRequest(
        "tool_choice: expected 'auto', 'none', 'required' or a named function", "tool_choice"
    )


def named_tool(choice: str | None) -> str | None:
    """The tool a choice names ("function:NAME"), else None."""
    if choice and choice.startswith("function:"):
        return choice[9:]
    return None


def response_format(openai_format: object, ollama_format: object) -> ResponseFormat | None:
    """OpenAI `response_format` or Ollama `format` ("json" or a JSON schema) -> neutral."""
    if isinstance(openai_format, ResponseFormat):
        return openai_format
    if openai_format:
        if not isinstance(openai_format, Mapping):
            raise InvalidRequest("response_format: expected an object", "response_format")
        kind = openai_format.get("type")
        if kind == "text":
            return None
        if kind == "json_object":
            return ResponseFormat("json_object")
        if kind == "json_schema":
            spec = openai_format.get("json_schema")
            if not isinstance(spec, Mapping) or not isinstance(spec.get("schema", {}), Mapping):
                raise InvalidRequest(
                    "response_format.json_schema: expected {name, schema}",
                    "response_format.json_schema",
                )
            return ResponseFormat(
                "json_schema", dict(spec.get("schema") or {}), spec.get("name"), spec.get("strict")
            )
        raise InvalidRequest(
            f"response_format.type: {kind!r} is not one of text, json_object, json_schema",
            "response_format.type",
        )
    if ollama_format:
        if ollama_format == "json":
            return ResponseFormat("json_object")
        if isinstance(ollama_format, Mapping):
            return ResponseFormat("json_schema", dict(ollama_format))
        raise InvalidRequest('format: expected "json" or a JSON schema', "format")
    return None


def think(value: object, effort: object) -> bool | str | None:
    """Ollama `think` (bool or "low"/"medium"/"high") or OpenAI `reasoning_effort`."""
    if value is not None and value is not False:
        if value is True or value in ("low", "medium", "high"):
            return value  # type: ignore[return-value]
        raise InvalidRequest("think: expected true, false, 'low', 'medium' or 'high'", "think")
    if effort is not None:
        if effort in ("none", "minimal"):
            return None if effort == "none" else "low"
        if effort in ("low", "medium", "high"):
            return str(effort)
        raise InvalidRequest(
            "reasoning_effort: expected 'low', 'medium' or 'high'", "reasoning_effort"
        )
    return None
