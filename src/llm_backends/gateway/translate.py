"""Protocol translation as plain functions: client request -> router call, router answer ->
client response object. Nothing here does I/O, so each direction is unit-testable.

The router speaks one neutral dialect (`CompletionRequest`; `Result`, `Chunk`: text,
reasoning, tool calls, logprobs, finish_reason, token counts), so any client protocol meets
any backend. This module holds what both protocols share; `translate_openai` and
`translate_ollama` hold each protocol's requests and answers.
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from llm_backends.gateway.errors import bad_request
from llm_backends.router.messages import InvalidRequest
from llm_backends.router.requests import build_request
from llm_backends.router.types import ChatMessage, CompletionRequest, Passthrough, ToolCall

NS_PER_S = 1_000_000_000


@dataclass(slots=True)
class RouterCall:
    """One generation as the router takes it (`request`), plus how to answer the client.

    Not frozen: a frozen dataclass sets each field through `object.__setattr__`, ~1 µs a
    request on the hot path; nothing changes a call after parsing (`replace` makes a new one).
    """

    model: str
    request: CompletionRequest
    stream: bool = False
    #: OpenAI: send a usage chunk before [DONE] (`stream_options.include_usage`).
    include_usage: bool = False
    #: Ollama: an empty prompt only loads the model; answered without calling a backend.
    load_only: bool = False

    @property
    def is_chat(self) -> bool:
        return self.request.messages is not None

    @property
    def messages(self) -> list[ChatMessage] | None:
        return self.request.messages

    @property
    def prompt(self) -> str | None:
        return self.request.prompt


# -- requests -----------------------------------------------------------------------------


def make_request(
    protocol: str,
    raw: bytes,
    features: dict[str, Any],
    plain: bool,
    **basics: Any,
) -> CompletionRequest:
    """The router request of a parsed body; a field the router cannot read is a 400.

    The raw body rides along for a backend of the client's protocol, unless the body is
    `plain` (only fields the neutral request carries whole): then the backend builds the
    same body itself, without re-parsing the client's (the plain-text path stays as fast).
    """
    try:
        passthrough = None if plain else Passthrough(protocol, raw)  # type: ignore[arg-type]
        return build_request(passthrough=passthrough, **basics, **features)
    except InvalidRequest as error:
        raise bad_request(str(error), error.param) from None


def is_plain(body: Any, plain_fields: frozenset[str]) -> bool:
    """Only fields the neutral request carries whole, and no unknown ones."""
    return body.model_fields_set <= plain_fields and not body.model_extra


def fields_set(body: Any, names: frozenset[str]) -> dict[str, Any]:
    """The feature fields a client set, with their values (none on the plain-text path)."""
    given = body.model_fields_set
    if given.isdisjoint(names):
        return {}
    return {name: getattr(body, name) for name in given & names}


def stop_list(stop: str | Sequence[str] | None) -> list[str] | None:
    if stop is None:
        return None
    if isinstance(stop, str):
        return [stop]
    return list(stop) or None


# -- responses ----------------------------------------------------------------------------


def completion_id(prefix: str) -> str:
    """A unique id, not a secret: `random` (reseeded in forked workers) instead of a
    getrandom syscall per answer."""
    return f"{prefix}-{random.getrandbits(96):024x}"


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


def openai_tool_calls(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    return [call.openai() for call in calls]


def ollama_tool_calls(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    """Ollama's shape: arguments as an object, the call's position as `function.index`."""
    return [
        {
            "id": call.id,
            "function": {
                "index": index,
                "name": call.name,
                "arguments": call.parsed_arguments(),
            },
        }
        for index, call in enumerate(calls)
    ]
