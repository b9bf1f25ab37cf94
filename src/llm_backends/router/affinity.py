"""Conversation affinity: the requests of one conversation go to the same server, so its
prompt cache (llama.cpp slots, vLLM prefix caching, Ollama's loaded context) is reused.

A conversation is recognised by an explicit key (`user` field, `x-session-id` header) or
else by its leading messages: the system prompt and first user message stay the same as a
chat grows, and they are the prefix a server has cached. A prompt's first characters play
that role for completions.

The server is chosen by weighted rendezvous hashing (highest random weight) among the
healthy servers with room, with bounded loads ("consistent hashing with bounded loads",
Mirrokni et al. 2018): a server already carrying more than LOAD_FACTOR times its weighted
fair share of the requests in flight is passed over for the next in the conversation's
order. So one hot conversation never piles onto a busy server, and many conversations
spread by weight.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import orjson

from llm_backends.router.types import CompletionRequest

#: How far above its weighted fair share of the in-flight requests a server may go for
#: affinity before the conversation moves on. 2.0 (twice the fair share) kept 59 of 60
#: conversations on their server in bench/fleet_bench.py where 1.25 moved a third of them.
LOAD_FACTOR = 2.0
#: Characters of a completion prompt that identify its conversation.
PROMPT_PREFIX_CHARS = 256
_MASK = (1 << 64) - 1


def stable_hash(text: str) -> int:
    """The same 64-bit value in every process (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def explicit_key(request: CompletionRequest) -> str | None:
    """`session=` (library) / `x-session-id` (gateway), else the OpenAI body's `user` field."""
    if request.session:
        return request.session
    carried = request.passthrough
    if carried is None or carried.protocol != "openai" or b'"user"' not in carried.body:
        return None
    try:
        user = orjson.loads(carried.body).get("user")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return user if isinstance(user, str) and user else None


def conversation_key(request: CompletionRequest, explicit: str | None = None) -> int:
    """The affinity key: explicit (user / session id) first, else the leading messages."""
    if explicit:
        return stable_hash("k\0" + explicit)
    messages = request.messages
    if messages is None:
        system = request.system or ""
        return stable_hash(f"p\0{system}\0{(request.prompt or '')[:PROMPT_PREFIX_CHARS]}")
    lead: list[str] = []
    if request.system:
        lead.append("system\0" + request.system)
    for message in messages:
        lead.append(f"{message.get('role')}\0{message.get('content')}")
        if message.get("role") == "user":
            break
    return stable_hash("m\0" + "\0".join(lead))


def _mix(value: int) -> int:
    """splitmix64's finaliser: spreads a combined key and server hash over 64 bits."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def rendezvous_score(key: int, server_hash: int, weight: int) -> float:
    """Weighted highest-random-weight score: -w / ln(u), u uniform in (0, 1)."""
    unit = (_mix(key ^ server_hash) + 1) / (_MASK + 2)
    return -weight / math.log(unit)


def within_bound(in_flight: int, weight: int, total_in_flight: int, total_weight: int) -> bool:
    """May a server carrying `in_flight` take one more affine request?"""
    fair = (total_in_flight + 1) * weight / total_weight
    return in_flight + 1 <= math.ceil(LOAD_FACTOR * fair)


def order(key: int, hashes: Sequence[int], weights: Sequence[int]) -> list[int]:
    """Indexes of servers in the conversation's preference order."""
    scores = [rendezvous_score(key, h, w) for h, w in zip(hashes, weights, strict=True)]
    return sorted(range(len(scores)), key=scores.__getitem__, reverse=True)
