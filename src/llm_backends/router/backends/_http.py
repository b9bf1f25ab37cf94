"""HTTP plumbing shared by the wire-protocol backends: timeouts, URL joining, error mapping.

Not a backend module (the leading underscore keeps the registry from importing it as one).
Plain functions over the shared session: no classes, no state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson

from llm_backends.router.errors import (
    BackendRequestError,
    BackendTimeout,
    BackendUnavailable,
    InvalidBackendResponse,
    LLMRouterError,
    ModelNotFound,
)
from llm_backends.router.types import BackendConfig, FinishReason

#: Headers of every JSON POST (pairs in a tuple: aiohttp takes it, nobody can mutate it).
JSON_HEADERS: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)

#: What a transport can raise while we talk to a backend; `transport_error` maps them.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, TimeoutError)

#: How much of an unparseable error body goes into an error message.
_BODY_EXCERPT = 200


def complete_timeout(connect: float, read: float) -> aiohttp.ClientTimeout:
    """A whole answer must arrive within connect + read seconds."""
    return aiohttp.ClientTimeout(total=connect + read, sock_connect=connect, sock_read=read)


def stream_timeout(connect: float, read: float) -> aiohttp.ClientTimeout:
    """A stream may run for ever, but each read waits at most `read` seconds."""
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)


def join_url(endpoint: str, path: str) -> str:
    """`endpoint` as the user typed it (maybe with a trailing slash) + an absolute `path`."""
    return endpoint.rstrip("/") + path


def finish_reason(value: object) -> FinishReason:
    """Servers say "stop", "length", "tool_calls", "load", ...; the router knows two."""
    return "length" if value == "length" else "stop"


def fail(
    cls: type[LLMRouterError],
    reason: str,
    config: BackendConfig,
    kind: str,
    status_code: int | None = None,
) -> LLMRouterError:
    """An error naming the model, the backend and the endpoint."""
    return cls(
        reason,
        model=config.model_name,
        backend=kind,
        endpoint=config.endpoint_url,
        status_code=status_code,
    )


def error_message(body: bytes) -> str:
    """The human message of an error body, whatever the server's dialect.

    Ollama and mlx_lm.server send `{"error": "..."}`, OpenAI and llama.cpp
    `{"error": {"message": ...}}`, older vLLM `{"message": ...}`, FastAPI `{"detail": ...}`.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if error:
            return str(error)
        for key in ("message", "detail"):
            if data.get(key):
                return str(data[key])
    text = body[:_BODY_EXCERPT].decode("utf-8", "replace").strip()
    return text or "(empty body)"


def status_error(status: int, body: bytes, config: BackendConfig, kind: str) -> LLMRouterError:
    """Map a non-200 answer to the error class that tells the router what to do next."""
    reason = f"HTTP {status}: {error_message(body)}"
    if status == 404:
        cls: type[LLMRouterError] = ModelNotFound
    elif status in (400, 413, 422):
        cls = BackendRequestError
    elif status == 408:
        cls = BackendTimeout
    elif status < 300:
        cls = InvalidBackendResponse
        reason = f"unexpected HTTP {status}"
    else:
        # 5xx, but also 401/403/429 and redirects: this backend can't serve us, another might.
        cls = BackendUnavailable
    return fail(cls, reason, config, kind, status)


def transport_error(exc: BaseException, config: BackendConfig, kind: str) -> LLMRouterError:
    """Map an aiohttp/asyncio failure (one of TRANSPORT_ERRORS) to a router error."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError):
        # aiohttp's ServerTimeoutError is a TimeoutError too, so this goes first.
        return fail(BackendTimeout, f"no answer within {config.timeout_seconds:g}s", config, kind)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return fail(InvalidBackendResponse, f"response body cut: {detail}", config, kind)
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.InvalidURL):
        return fail(BackendUnavailable, f"cannot reach backend: {detail}", config, kind)
    return fail(InvalidBackendResponse, f"bad HTTP response: {detail}", config, kind)


def invalid(reason: str, config: BackendConfig, kind: str) -> LLMRouterError:
    """The backend answered 200, but not in its protocol."""
    return fail(InvalidBackendResponse, reason, config, kind)


def reported_error(error: object, config: BackendConfig, kind: str) -> LLMRouterError:
    """An `error` object the server sent with status 200 (typically mid-stream): it failed."""
    if isinstance(error, dict):
        error = error.get("message") or error
    return fail(BackendUnavailable, f"backend reported an error: {error}", config, kind)


def load_object(body: bytes, config: BackendConfig, kind: str) -> dict[str, Any]:
    """One JSON object of a 200 answer or stream; one with an `error` key is a failure."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"invalid JSON: {body[:80]!r}", config, kind) from exc
    if not isinstance(data, dict):
        raise invalid(f"expected a JSON object: {body[:80]!r}", config, kind)
    if "error" in data:
        raise reported_error(data["error"], config, kind)
    return data


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    payload: dict[str, Any],
    config: BackendConfig,
    kind: str,
    connect_timeout: float,
) -> bytes:
    """POST `payload`, return the 200 body; every failure becomes a router error."""
    timeout = complete_timeout(connect_timeout, config.timeout_seconds)
    try:
        async with session.post(
            url, data=orjson.dumps(payload), headers=JSON_HEADERS, timeout=timeout
        ) as response:
            body = await response.read()
            status = response.status
    except TRANSPORT_ERRORS as exc:
        raise transport_error(exc, config, kind) from exc
    if status != 200:
        raise status_error(status, body, config, kind)
    return body


async def stream_lines(
    session: aiohttp.ClientSession,
    url: str,
    payload: dict[str, Any],
    config: BackendConfig,
    kind: str,
    connect_timeout: float,
) -> AsyncIterator[bytes]:
    """POST `payload` and yield the 200 body line by line (without the newline), as it arrives.

    Lines are split here rather than with `StreamReader.readline`, whose 64 KiB line limit
    an Ollama final line (it carries the whole `context` token list) can exceed.
    Closing this generator early (the consumer went away) releases the response before its
    end, which makes aiohttp close the connection: the server sees the disconnect and stops.
    """
    timeout = stream_timeout(connect_timeout, config.timeout_seconds)
    try:
        async with session.post(
            url, data=orjson.dumps(payload), headers=JSON_HEADERS, timeout=timeout
        ) as response:
            if response.status != 200:
                raise status_error(response.status, await response.read(), config, kind)
            buffer = b""
            async for data in response.content.iter_any():
                buffer += data
                if b"\n" in data:
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        yield line
            if buffer:
                yield buffer
    except TRANSPORT_ERRORS as exc:
        raise transport_error(exc, config, kind) from exc
