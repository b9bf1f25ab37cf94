"""What the fakes do with the feature fields, as the real servers do (read from their source):

- Ollama (`api/types.go`, `server/routes.go`): tool calls come back in `message.tool_calls`
  with `function.arguments` as an object and `function.index`, in one stream line of their
  own, `done_reason` stays "stop"; `think: true` adds `message.thinking` (`thinking` on
  /api/generate), streamed before the content; `images` must be base64 (a data: URL is
  "illegal base64 data"); `format`, `options`, `keep_alive` are taken as given.
- vLLM (`entrypoints/openai/protocol.py`, `serving_chat.py`): tool calls in
  `message.tool_calls` with an `id`, `type: "function"` and JSON-string arguments,
  `finish_reason: "tool_calls"`, `content: null`; streamed as `delta.tool_calls` pieces: the
  first with index, id, type, name and empty arguments, then argument fragments; reasoning
  in `reasoning_content`; `n` choices; `logprobs.content` entries; `tools: []` is a 400.
- mlx_lm.server (`server.py`): reasoning in `reasoning`; ignores `n` and `response_format`;
  non-text content parts are a 400 ("Only 'text' content type is supported.").
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass
class OllamaExtras:
    thinking: str | None
    tool_calls: list[dict[str, Any]]
    #: `logprobs: true` asked: each content line carries its token's entry (Ollama's shape).
    logprobs: bool = False
    top_logprobs: int = 0


def refusal(body: dict[str, Any]) -> str | None:
    """Ollama's 400 for images that are not base64."""
    images = list(body.get("images") or ())
    for message in body.get("messages") or ():
        if isinstance(message, dict):
            images.extend(message.get("images") or ())
    for image in images:
        try:
            base64.b64decode(image, validate=True)
        except (binascii.Error, ValueError, TypeError):
            return "illegal base64 data at input byte 4"
    return None


def ollama_extras(behaviour: Any, body: dict[str, Any], chat: bool) -> OllamaExtras:
    think = body.get("think")
    calls = behaviour.tool_calls if chat and body.get("tools") else []
    return OllamaExtras(
        behaviour.thinking if think else None,
        list(calls),
        bool(body.get("logprobs")),
        int(body.get("top_logprobs") or 0),
    )


def ollama_logprobs(text: str, extras: OllamaExtras) -> list[dict[str, Any]]:
    """Ollama's entries: token, logprob, top_logprobs [{token, logprob}]."""
    entries = []
    for token in text.split(" ") if text else []:
        top = [{"token": token, "logprob": -0.5}] * min(extras.top_logprobs, 1)
        entries.append({"token": token, "logprob": -0.5, "top_logprobs": top})
    return entries


def _ollama_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"function": {"index": i, "name": c["name"], "arguments": c["arguments"]}}
        for i, c in enumerate(calls)
    ]


def add_to_ollama_answer(answer: dict[str, Any], extras: OllamaExtras, chat: bool) -> None:
    holder = answer.get("message", answer) if chat else answer
    if extras.logprobs:
        text = holder.get("content", "") if chat else answer.get("response", "")
        answer["logprobs"] = ollama_logprobs(text, extras)
    if extras.thinking:
        holder["thinking"] = extras.thinking
    if extras.tool_calls:
        holder["tool_calls"] = _ollama_calls(extras.tool_calls)
        if chat:
            holder["content"] = ""  # a model calling tools says nothing else


def _ollama_line(model: str, chat: bool, now: str, **fields: Any) -> dict[str, Any]:
    line: dict[str, Any] = {"model": model, "created_at": now}
    if chat:
        line["message"] = {"role": "assistant", "content": "", **fields}
    else:
        line["response"] = ""
        line.update(fields)
    line["done"] = False
    return line


def ollama_head_lines(
    extras: OllamaExtras, model: str, chat: bool, now: str
) -> list[dict[str, Any]]:
    if not extras.thinking:
        return []
    return [_ollama_line(model, chat, now, thinking=extras.thinking)]


def ollama_call_lines(
    extras: OllamaExtras, model: str, chat: bool, now: str
) -> list[dict[str, Any]]:
    if not extras.tool_calls:
        return []
    return [_ollama_line(model, chat, now, tool_calls=_ollama_calls(extras.tool_calls))]


# -- OpenAI-compatible servers ------------------------------------------------------------


def openai_refusal(body: dict[str, Any], flavour: str) -> str | None:
    if flavour == "vllm" and body.get("tools") == []:
        return "tools: List should have at least 1 item"
    if flavour == "mlx":
        for message in body.get("messages") or ():
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, list) and any(p.get("type") != "text" for p in content):
                return "Only 'text' content type is supported."
    return None


def choices_wanted(body: dict[str, Any], flavour: str) -> int:
    n = body.get("n") or 1
    return 1 if flavour == "mlx" else int(n)


def calls_for(behaviour: Any, body: dict[str, Any]) -> list[dict[str, Any]]:
    if not body.get("tools") or body.get("tool_choice") == "none":
        return []
    return list(behaviour.tool_calls)


def reasoning_for(behaviour: Any, body: dict[str, Any], flavour: str) -> str | None:
    if flavour == "mlx":
        kwargs = body.get("chat_template_kwargs") or {}
        return behaviour.thinking if kwargs.get("enable_thinking") else None
    return behaviour.thinking if body.get("reasoning_effort") else None


def reasoning_key(flavour: str) -> str:
    return "reasoning" if flavour == "mlx" else "reasoning_content"


def openai_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "id": f"chatcmpl-tool-{i}abc",
            "type": "function",
            "function": {"name": c["name"], "arguments": orjson.dumps(c["arguments"]).decode()},
        }
        for i, c in enumerate(calls)
    ]


def call_deltas(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """vLLM's pieces: head (index, id, type, name, "" arguments), then two fragments."""
    deltas: list[dict[str, Any]] = []
    for i, call in enumerate(openai_calls(calls)):
        head = {
            "index": i,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        deltas.append(head)
        text = call["function"]["arguments"]
        half = len(text) // 2
        for fragment in (text[:half], text[half:]):
            deltas.append({"index": i, "function": {"arguments": fragment}})
    return deltas


def logprobs_for(text: str, body: dict[str, Any], chat: bool) -> dict[str, Any] | None:
    if not body.get("logprobs"):
        return None
    tokens = text.split(" ") if text else []
    if chat:
        top = body.get("top_logprobs") or 0
        return {
            "content": [
                {
                    "token": t,
                    "logprob": -0.5,
                    "bytes": list(t.encode()),
                    "top_logprobs": [{"token": t, "logprob": -0.5, "bytes": list(t.encode())}]
                    * min(top, 1),
                }
                for t in tokens
            ]
        }
    return {
        "tokens": tokens,
        "token_logprobs": [-0.5] * len(tokens),
        "top_logprobs": [{t: -0.5} for t in tokens],
        "text_offset": [],
    }
