"""HTTP plumbing shared by the wire-protocol backends: timeouts, URL joining, error mapping,
and the size limits that keep a hostile or broken backend from exhausting memory.

Not a backend module (the leading underscore keeps the registry from importing it as one).
Plain functions over the shared connection pool (`router.transport`): no classes, no state.
"""

from __future__ import annotations

import errno
import functools
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson

from llm_backends import hops as hop_list
from llm_backends.router.errors import (
    BackendRequestError,
    BackendTimeout,
    BackendUnavailable,
    InvalidBackendResponse,
    LLMRouterError,
    LoopDetected,
    ModelNotFound,
)
from llm_backends.router.transport import (
    ConnectError,
    HttpPool,
    InvalidURL,
    ProtocolError,
    Response,
    ServerDisconnected,
    TransportError,
)
from llm_backends.router.types import BackendConfig, FinishReason


@functools.lru_cache(maxsize=64)
def hop_headers(hops: tuple[str, ...] = ()) -> tuple[tuple[str, str], ...]:
    """Headers of a JSON POST: the content type and the hop list (the request's incoming
    hops plus this process's id: see `llm_backends.hops`). Pairs in a tuple: hashable (the
    pool caches their encoding), immutable, and the usual case (no incoming hops) built once."""
    return (("Content-Type", "application/json"), (hop_list.HEADER, hop_list.outgoing(hops)))


#: Headers of a POST that did not come through a gateway.
JSON_HEADERS = hop_headers()


def request_headers(
    config: BackendConfig, hops: tuple[str, ...] = ()
) -> tuple[tuple[str, str], ...]:
    """The headers of a POST to the config's backend: `hop_headers`, plus its credential if
    it has one. A plain request to a backend without a key allocates nothing."""
    headers = hop_headers(hops) if hops else JSON_HEADERS
    return headers + config.auth_headers if config.auth_headers else headers


#: What a transport can raise while we talk to a backend; `transport_error` maps them.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (TransportError, OSError)

#: How much of an unparseable error body goes into an error message.
_BODY_EXCERPT = 200

#: The longest message a backend can put in an error (errors reach logs and clients).
_MESSAGE_LIMIT = 1000

#: Default of the `max_backend_response_bytes` setting: far above any real answer (a whole
#: body, or one stream line), far below what would hurt the process.
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024

#: A Retry-After worth passing on: delay-seconds or an HTTP-date, nothing else.
_RETRY_AFTER = re.compile(r"^[A-Za-z0-9 ,:]{1,40}$")

#: How much of an error (non-200) body is read: enough for any message, never more.
_ERROR_BODY_CAP = 64 * 1024


def join_url(endpoint: str, path: str) -> str:
    """`endpoint` as the user typed it (maybe with a trailing slash) + an absolute `path`."""
    return endpoint.rstrip("/") + path


def finish_reason(value: object) -> FinishReason:
    """Servers say "stop", "length", "tool_calls", "load", ...; the router knows three."""
    if value == "length" or value == "tool_calls":
        return value
    return "stop"


def fail(
    cls: type[LLMRouterError],
    reason: str,
    config: BackendConfig,
    kind: str,
    status_code: int | None = None,
    retry_after: str | None = None,
) -> LLMRouterError:
    """An error naming the model, the backend and the endpoint."""
    return cls(
        reason,
        model=config.model_name,
        backend=kind,
        endpoint=config.endpoint_url,
        status_code=status_code,
        retry_after=retry_after,
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
            return shorten(str(error["message"]))
        if error:
            return shorten(str(error))
        for key in ("message", "detail"):
            if data.get(key):
                return shorten(str(data[key]))
    text = body[:_BODY_EXCERPT].decode("utf-8", "replace").strip()
    return text or "(empty body)"


def shorten(message: str) -> str:
    """A backend's message, cut to a length fit for a log line and an error response."""
    if len(message) <= _MESSAGE_LIMIT:
        return message
    return message[:_MESSAGE_LIMIT] + f"... ({len(message) - _MESSAGE_LIMIT} more characters)"


def status_error(
    status: int, body: bytes, config: BackendConfig, kind: str, retry_after: str | None = None
) -> LLMRouterError:
    """Map a non-200 answer to the error class that tells the router what to do next; a
    503 or 429 keeps the server's Retry-After when it looks like one (seconds or a date)."""
    reason = f"HTTP {status}: {error_message(body)}"
    if status == 404:
        cls: type[LLMRouterError] = ModelNotFound
    elif status in (400, 413, 422):
        cls = BackendRequestError
    elif status == 408:
        cls = BackendTimeout
    elif status == 508:
        cls = LoopDetected
    elif status < 300:
        cls = InvalidBackendResponse
        reason = f"unexpected HTTP {status}"
    else:
        # 5xx, but also 401/403/429 and redirects: this backend can't serve us, another might.
        cls = BackendUnavailable
    if status not in (429, 503) or not retry_after or not _RETRY_AFTER.match(retry_after):
        retry_after = None
    return fail(cls, reason, config, kind, status, retry_after)


def transport_error(exc: BaseException, config: BackendConfig, kind: str) -> LLMRouterError:
    """Map a transport failure (one of TRANSPORT_ERRORS) to a router error."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError):
        return fail(BackendTimeout, f"no answer within {config.timeout_seconds:g}s", config, kind)
    if isinstance(exc, ServerDisconnected) and exc.in_body:
        return fail(InvalidBackendResponse, f"response body cut: {detail}", config, kind)
    if isinstance(exc, ProtocolError):
        return fail(InvalidBackendResponse, detail, config, kind)
    if isinstance(exc, ConnectError) and exc.os_error.errno == errno.ECONNREFUSED:
        # The guide's troubleshooting looks for "Connection refused" (nothing listens there).
        detail = f"Connection refused ({detail})"
    if isinstance(exc, ConnectError | ServerDisconnected | InvalidURL | OSError):
        return fail(BackendUnavailable, f"cannot reach backend: {detail}", config, kind)
    return fail(InvalidBackendResponse, f"bad HTTP response: {detail}", config, kind)


def invalid(reason: str, config: BackendConfig, kind: str) -> LLMRouterError:
    """The backend answered 200, but not in its protocol."""
    return fail(InvalidBackendResponse, reason, config, kind)


def reported_error(error: object, config: BackendConfig, kind: str) -> LLMRouterError:
    """An `error` object the server sent with status 200 (typically mid-stream): it failed."""
    if isinstance(error, dict):
        error = error.get("message") or error
    reason = f"backend reported an error: {shorten(str(error))}"
    return fail(BackendUnavailable, reason, config, kind)


def too_large(what: str, limit: int, config: BackendConfig, kind: str) -> LLMRouterError:
    return invalid(f"{what} larger than {limit} bytes (max_backend_response_bytes)", config, kind)


def encode_body(payload: dict[str, Any], config: BackendConfig, kind: str) -> bytes:
    """The request body as JSON. What JSON can carry but the backend cannot (an integer
    beyond 64 bits, in a field the gateway passes on unchecked) is the client's error,
    named by its field, not a crash."""
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError as error:
        where = _unencodable(payload) or "request body"
        refused = fail(BackendRequestError, f"{where}: cannot be sent: {error}", config, kind)
        refused.param = where  # type: ignore[attr-defined]  # OpenAI's `param`, for the gateway
        raise refused from None


def _unencodable(value: object, path: str = "") -> str | None:
    """The dotted path of the first value orjson refuses, or None."""
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        try:
            orjson.dumps(value)
        except orjson.JSONEncodeError:
            return path
        return None
    for key, item in items:
        found = _unencodable(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


async def answer_error(response: Response, config: BackendConfig, kind: str) -> LLMRouterError:
    """The router error of a non-200 answer: from its status, the message at the start of
    its body (only that is read, whatever the body's size) and its Retry-After."""
    body, _ = await response.read(_ERROR_BODY_CAP)
    return status_error(response.status, body, config, kind, response.header(b"retry-after"))


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
    client: HttpPool,
    url: str,
    payload: dict[str, Any],
    config: BackendConfig,
    kind: str,
    connect_timeout: float,
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    headers: tuple[tuple[str, str], ...] = JSON_HEADERS,
) -> bytes:
    """POST `payload`, return the 200 body; every failure becomes a router error. A whole
    answer must arrive within the config's `timeout_seconds`, connecting included (which
    alone may take `connect_timeout`).

    A body over `max_bytes` is refused (unread past the limit, the connection is dropped).
    """
    data = encode_body(payload, config, kind)
    try:
        response = await client.request(
            b"POST",
            url,
            data,
            headers,
            connect_timeout=connect_timeout,
            total=config.timeout_seconds,
        )
        try:
            if response.status != 200:
                raise await answer_error(response, config, kind)
            length = response.content_length
            if length is not None and length > max_bytes:
                raise too_large("response body", max_bytes, config, kind)
            body, more = await response.read(max_bytes)
            if more:
                raise too_large("response body", max_bytes, config, kind)
        finally:
            response.release()
    except TRANSPORT_ERRORS as exc:
        raise transport_error(exc, config, kind) from exc
    return body


async def stream_lines(
    client: HttpPool,
    url: str,
    payload: dict[str, Any],
    config: BackendConfig,
    kind: str,
    connect_timeout: float,
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    headers: tuple[tuple[str, str], ...] = JSON_HEADERS,
) -> AsyncIterator[bytes]:
    """POST `payload` and yield the 200 body line by line (without the newline), as it arrives.
    A stream may run for ever, but each wait for the server lasts at most `timeout_seconds`.

    Lines are split here, so a line may be as long as `max_bytes` (an Ollama final line
    carries the whole `context` token list); a longer one is refused. Closing this generator
    early (the consumer went away) closes the connection: the server sees the disconnect and
    stops.
    """
    data = encode_body(payload, config, kind)
    try:
        response = await client.request(
            b"POST",
            url,
            data,
            headers,
            connect_timeout=connect_timeout,
            read_timeout=config.timeout_seconds,
        )
        try:
            if response.status != 200:
                raise await answer_error(response, config, kind)
            buffer = bytearray()  # grows in place: a long line costs linear, not quadratic, time
            while (chunk := await response.read_chunk()) is not None:
                # find(), not `in`: `bytes in bytes` first tries the needle as an int, and
                # builds (and drops) a TypeError each time: ~2,600 instructions a piece.
                if chunk.find(b"\n") >= 0:
                    if buffer:
                        buffer += chunk
                        *lines, rest = buffer.split(b"\n")
                    else:  # the usual case: whole lines in one piece, no copy into the buffer
                        *lines, rest = chunk.split(b"\n")
                    for line in lines:
                        if len(line) > max_bytes:
                            raise too_large("a stream line", max_bytes, config, kind)
                        yield bytes(line)
                    buffer = bytearray(rest)
                else:
                    buffer += chunk
                if len(buffer) > max_bytes:
                    raise too_large("a stream line", max_bytes, config, kind)
            if buffer:
                yield bytes(buffer)
        finally:
            response.release()
    except TRANSPORT_ERRORS as exc:
        raise transport_error(exc, config, kind) from exc
