"""Loop protection: every request the router sends carries the ids of the gateways it has
passed through, and a gateway refuses a request that already carries its own id.

Without it, a config whose `endpoint_url` is the gateway itself (the guide puts MLX and the
Admin API both on port 8080) turns one request into hundreds of recursive ones until the
timeout. The header is `x-llm-backends-hops: <id>,<id>,...`, oldest first; a backend that is
not llm-backends ignores it. The id is random per process (made once, at import), so two
processes (or two replicas) pointing at each other are caught as well as one pointing at
itself.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Iterable
from urllib.parse import urlsplit

#: This process's id in the hop list (immutable after import).
INSTANCE_ID: str = secrets.token_hex(6)
HEADER = "x-llm-backends-hops"
HEADER_BYTES = HEADER.encode("latin-1")
#: More hops than this is a loop through something that drops our id, or garbage: refused.
MAX_HOPS = 16
#: An id longer than this is not one of ours (ours are 12 hex digits).
_MAX_ID = 64
#: HTTP status of a refusal: 508 Loop Detected (RFC 5842).
LOOP_STATUS = 508
#: Host names that all mean "this machine" to a server listening on it.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "0.0.0.0", "::1", "::", "ip6-localhost"})


def parse(value: str | bytes | None) -> tuple[str, ...]:
    """The ids of a header value ("a,b, c" -> ("a", "b", "c")); empty parts are dropped."""
    if not value:
        return ()
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return tuple(part.strip()[:_MAX_ID] for part in value.split(",") if part.strip())


def incoming(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str, ...]:
    """The hops of an ASGI request (its raw, lower-cased header pairs); () without the header."""
    for name, value in headers:
        if name == HEADER_BYTES:
            return parse(value)
    return ()


def is_loop(hops: tuple[str, ...]) -> bool:
    """Has this request already passed through this process (or through too many hops)?"""
    return INSTANCE_ID in hops or len(hops) >= MAX_HOPS


@functools.lru_cache(maxsize=64)
def outgoing(hops: tuple[str, ...] = ()) -> str:
    """The header value to send on: the incoming hops plus this process's id."""
    return ",".join((*hops, INSTANCE_ID))


def loop_message(model: str, hops: tuple[str, ...], endpoint_url: str, *, is_default: bool) -> str:
    """What a refusal says: where the request has been and which config sends it back."""
    path = " -> ".join(hops) or "(none)"
    if len(hops) >= MAX_HOPS and INSTANCE_ID not in hops:
        head = f"Loop detected: the request for model '{model}' passed through {len(hops)} gateways"
    else:
        head = (
            f"Loop detected: the request for model '{model}' already passed through this "
            f"llm-backends gateway (instance {INSTANCE_ID})"
        )
    if is_default:
        cause = (
            f"model '{model}' has no enabled config here, and the default Ollama "
            f"(OLLAMA_URL={endpoint_url}) leads back to this gateway: set OLLAMA_URL to a real "
            "Ollama server"
        )
    else:
        cause = (
            f"the config of model '{model}' (endpoint_url {endpoint_url}) leads back to this "
            "gateway: set its endpoint_url to the inference server, not to llm-backends"
        )
    return f"{head}; hops: {path}. {cause}."


def points_at(endpoint_url: str, own: Iterable[tuple[str, int]]) -> bool:
    """Whether `endpoint_url` names one of the `own` (host, port) addresses of this server;
    localhost, 127.0.0.1, ::1 and 0.0.0.0 are one machine."""
    try:
        parts = urlsplit(endpoint_url)
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return False
    for own_host, own_port in own:
        if port != own_port:
            continue
        own_host = own_host.lower().strip("[]")
        if host == own_host or (host in LOCAL_HOSTS and own_host in LOCAL_HOSTS):
            return True
    return False
