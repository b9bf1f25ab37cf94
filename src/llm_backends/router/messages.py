"""Chat messages, images and tool calls in either protocol's shape -> the neutral form.

The library accepts messages as OpenAI or Ollama clients write them, and the gateway parses
both protocols into the same `ChatMessage`s, so one function per direction serves both.
Plain messages (a role and a string) are kept as they are: nothing is copied on that path.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from llm_backends.router.types import ChatMessage, ToolCall

_PLAIN_KEYS = frozenset(("role", "content"))
#: Roles a plain message may have as it is (others, e.g. "developer", are converted).
_PLAIN_ROLES = frozenset(("system", "user", "assistant"))
_ROLES = frozenset(("system", "developer", "user", "assistant", "tool", "function"))
_IMAGE_MIME = (
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"RIFF", "image/webp"),
)


class InvalidRequest(ValueError):
    """A request field that cannot be understood. Messages read "field.path: why"; `param`
    is that path (OpenAI's `param`)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = message.partition(": ")[0] or param


def mint_call_id() -> str:
    """A fresh tool call id, shaped like OpenAI's and Ollama's own (`call_` + random)."""
    return "call_" + os.urandom(12).hex()


# -- images -------------------------------------------------------------------------------


def is_remote(image: str) -> bool:
    return image.startswith(("http://", "https://"))


def image_from_url(url: str, param: str) -> str:
    """An OpenAI `image_url` -> neutral: a data URL's base64 payload, or the http(s) URL."""
    if is_remote(url):
        return url
    if url.startswith("data:"):
        header, sep, data = url.partition(",")
        if sep and header.endswith(";base64"):
            return data
    raise InvalidRequest(f"{param}: an image URL must be a base64 data: URL or http(s)", param)


def data_url(image: str) -> str:
    """Neutral image -> an OpenAI image URL (a data URL with the type sniffed from its bytes)."""
    if is_remote(image):
        return image
    try:
        head = base64.b64decode(image[:16] + "=" * (-len(image[:16]) % 4), validate=False)
    except (binascii.Error, ValueError):
        head = b""
    mime = next((m for magic, m in _IMAGE_MIME if head.startswith(magic)), "image/png")
    return f"data:{mime};base64,{image}"


# -- tool calls ---------------------------------------------------------------------------


def arguments_text(value: object) -> str:
    """Arguments as JSON text, whether a client sent an object (Ollama) or a string (OpenAI)."""
    if isinstance(value, str):
        return value
    if value is None:
        return "{}"
    return orjson.dumps(value).decode()


def tool_calls_from(raw: object, param: str) -> list[ToolCall]:
    """Tool calls in OpenAI shape (id, type, function.arguments string) or Ollama shape
    (function.arguments object, maybe no id): ids are minted where missing."""
    if not isinstance(raw, list):
        raise InvalidRequest(f"{param}: expected a list of tool calls", param)
    calls: list[ToolCall] = []
    for index, item in enumerate(raw):
        function = item.get("function") if isinstance(item, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise InvalidRequest(f"{param}.{index}.function.name: required", param)
        call_id = item.get("id") or mint_call_id()
        calls.append(
            ToolCall(str(call_id), function["name"], arguments_text(function.get("arguments")))
        )
    return calls


def answer_tool_calls(raw: object) -> tuple[ToolCall, ...]:
    """A backend answer's `message.tool_calls` (OpenAI's or Ollama's: arguments as text or an
    object, ids often absent) -> neutral, ids minted where missing. Unlike a client's calls,
    a malformed entry is skipped rather than refused: the backend, not the client, sent it."""
    if not isinstance(raw, list):
        return ()
    calls: list[ToolCall] = []
    for item in raw:
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            continue
        arguments = function.get("arguments")
        text = arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode()
        calls.append(ToolCall(str(item.get("id") or mint_call_id()), function["name"], text))
    return tuple(calls)


# -- messages -----------------------------------------------------------------------------


def neutral_messages(raw: Sequence[Mapping[str, Any]]) -> tuple[list[ChatMessage], bool]:
    """Messages in OpenAI or Ollama shape (or mixed) -> neutral messages, and whether any
    carries more than text. A tool answer's `tool_name` is filled from the call it answers
    (by `tool_call_id`), and its `tool_call_id` from the latest unanswered call of its name."""
    rich = False
    for message in raw:
        if not (
            message.keys() <= _PLAIN_KEYS
            and message.get("role") in _PLAIN_ROLES
            and isinstance(message.get("content"), str)
        ):
            rich = True
            break
    if not rich:
        return raw if isinstance(raw, list) else list(raw), False  # type: ignore[return-value]
    names: dict[str, str] = {}
    unanswered: list[ToolCall] = []
    out: list[ChatMessage] = []
    for index, message in enumerate(raw):
        converted = _message(message, f"messages.{index}")
        for call in converted.get("tool_calls", ()):
            names[call.id] = call.name
            unanswered.append(call)
        if converted["role"] == "tool":
            _link_tool_answer(converted, names, unanswered)
        out.append(converted)
    return out, True


def _link_tool_answer(
    message: ChatMessage, names: dict[str, str], unanswered: list[ToolCall]
) -> None:
    call_id = message.get("tool_call_id")
    if call_id and "tool_name" not in message and call_id in names:
        message["tool_name"] = names[call_id]
    if not call_id:
        name = message.get("tool_name")
        match = next((c for c in unanswered if name is None or c.name == name), None)
        if match is not None:
            message["tool_call_id"] = match.id
            message.setdefault("tool_name", match.name)
    answered = message.get("tool_call_id")
    unanswered[:] = [c for c in unanswered if c.id != answered]


def _message(message: Mapping[str, Any], param: str) -> ChatMessage:
    if not isinstance(message, Mapping):
        raise InvalidRequest(f"{param}: expected a message object", param)
    role = message.get("role")
    if role not in _ROLES:
        raise InvalidRequest(
            f"{param}.role: expected one of {', '.join(sorted(_ROLES))}", f"{param}.role"
        )
    if role == "developer":  # OpenAI's newer name of "system"; other servers know the latter
        role = "system"
    out: ChatMessage = {"role": role, "content": ""}
    images: list[str] = []
    content = message.get("content")
    if isinstance(content, str):
        out["content"] = content
    elif isinstance(content, list):
        texts: list[str] = []
        for index, part in enumerate(content):
            _content_part(part, f"{param}.content.{index}", texts, images)
        out["content"] = "".join(texts)
    elif content is not None:
        raise InvalidRequest(f"{param}.content: expected a string or a list of parts", param)
    for index, image in enumerate(message.get("images") or ()):
        if not isinstance(image, str):
            raise InvalidRequest(f"{param}.images.{index}: expected base64 text", param)
        images.append(
            image_from_url(image, f"{param}.images.{index}") if image.startswith("data:") else image
        )
    if images:
        out["images"] = images
    if message.get("tool_calls"):
        out["tool_calls"] = tool_calls_from(message["tool_calls"], f"{param}.tool_calls")
    for key in ("tool_call_id", "tool_name"):
        if message.get(key):
            out[key] = str(message[key])  # type: ignore[literal-required]
    if role == "tool" and message.get("name") and "tool_name" not in out:
        out["tool_name"] = str(message["name"])
    thinking = (
        message.get("thinking") or message.get("reasoning_content") or message.get("reasoning")
    )
    if isinstance(thinking, str) and thinking:
        out["thinking"] = thinking
    return out


def _content_part(part: object, param: str, texts: list[str], images: list[str]) -> None:
    if not isinstance(part, Mapping):
        raise InvalidRequest(f"{param}: expected a content part object", param)
    kind = part.get("type")
    if kind == "text" and isinstance(part.get("text"), str):
        texts.append(part["text"])
    elif kind == "image_url":
        value = part.get("image_url")
        url = value.get("url") if isinstance(value, Mapping) else value
        if not isinstance(url, str):
            raise InvalidRequest(f"{param}.image_url.url: required", param)
        images.append(image_from_url(url, f"{param}.image_url.url"))
    else:
        raise InvalidRequest(
            f"{param}.type: {kind!r} parts are not supported (text and image_url are)", param
        )
