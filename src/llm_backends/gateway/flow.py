"""The request flow shared by every generation endpoint of both protocols.

auth -> parse -> route (whole answer, or stream) -> render, with the metrics and the
`x-llm-backend` / `x-llm-overhead-ms` headers. An `Endpoint` says how one route speaks its
protocol; everything else is the same for all four.

`x-llm-overhead-ms` is the handler's own time: its total time minus the time spent waiting
on the router (the backend call, including any fallback). For a stream it is the time up to
the response headers minus the wait for the first chunk.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson
import structlog
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from llm_backends import hops
from llm_backends.gateway.disconnect import CLIENT_CLOSED, CancelOnDisconnect, ClientDisconnected
from llm_backends.gateway.errors import (
    DEFAULT_ROUTE_HEADER,
    GatewayError,
    Protocol,
    error_body,
    from_router_error,
)
from llm_backends.gateway.loop_guard import loop_refusal
from llm_backends.gateway.responses import Headers, RawResponse, header, headers_of
from llm_backends.gateway.service import Gateway
from llm_backends.gateway.streaming import (
    RoutedStreamingResponse,
    StreamEncoder,
    first_chunk,
    stream_body,
)
from llm_backends.gateway.translate import RouterCall
from llm_backends.router.core import LLMRouter
from llm_backends.router.errors import LLMRouterError
from llm_backends.router.streaming import RoutedStream
from llm_backends.router.types import CompletionRequest, Result

log = structlog.get_logger("llm_backends.gateway")

JSON = "application/json"
#: Says the request asked for more tokens than the config's max_tokens, and was sent with it.
CAPPED_HEADER = "x-llm-max-tokens-capped"
CAPPED_HEADER_BYTES = CAPPED_HEADER.encode()
DEFAULT_ROUTE = (DEFAULT_ROUTE_HEADER.encode(), b"true")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """How one generation route speaks its protocol."""

    protocol: Protocol
    #: Raw body -> router call; raises GatewayError (400) naming the bad field.
    parse: Callable[[bytes], RouterCall]
    #: A whole answer -> the response object; the float is the seconds spent so far.
    render: Callable[[RouterCall, Result, float], dict[str, Any]]
    #: A stream encoder for a call; the float is when the request started (perf_counter).
    encoder: Callable[[RouterCall, float], StreamEncoder]
    #: The answer to a call that only loads the model (Ollama's empty prompt).
    loaded: Callable[[RouterCall], dict[str, Any]] | None = None


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.scope["app"].state.gateway
    return gateway


def overhead_header(seconds: float) -> str:
    return f"{max(seconds, 0.0) * 1000.0:.3f}"


def json_response(data: Any, headers: dict[str, str] | None = None) -> Response:
    return RawResponse(orjson.dumps(data), headers=list(headers_of(headers)))


def error_response(protocol: Protocol, error: GatewayError, overhead: float) -> Response:
    headers = [(b"x-llm-overhead-ms", overhead_header(overhead).encode())]
    if error.backend:
        headers.append(header("x-llm-backend", error.backend))
    headers.extend(headers_of(error.headers))
    return RawResponse(error_body(protocol, error), error.status, headers)


async def read_body(request: Request) -> bytes:
    """The whole request body, read from ASGI `receive` directly: Starlette's
    `Request.body()` goes through an async generator, several times the cost for the usual
    body that arrives in one message."""
    chunks: list[bytes] = []
    try:
        while True:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnect
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks)  # one chunk: the same bytes object, not a copy
    except HTTPException as error:  # the body-size limit, on a chunked body
        raise GatewayError(error.status_code, str(error.detail)) from None


async def handle(request: Request, endpoint: Endpoint) -> Response:
    """Answer one generation request; never raises (every failure is a protocol error body)."""
    started = time.perf_counter()
    gateway = gateway_of(request)
    protocol = endpoint.protocol
    try:
        await gateway.auth.check(request)
        call = endpoint.parse(await read_body(request))
    except GatewayError as error:
        gateway.metrics.request(protocol, "", "", str(error.status), None)
        return error_response(protocol, error, time.perf_counter() - started)
    except ClientDisconnect:
        gateway.metrics.request(protocol, "", "", str(CLIENT_CLOSED), None)
        return Response(status_code=CLIENT_CLOSED)
    seen = hops.incoming(request.scope["headers"])
    if seen and hops.is_loop(seen):
        return _failed(
            gateway,
            protocol,
            call,
            await loop_refusal(gateway.router, call.model, seen),
            started,
            0.0,
        )
    for name, value in request.scope["headers"]:  # fleet affinity (router/affinity.py)
        if name == b"x-session-id" and value:
            call = replace(call, request=replace(call.request, session=value.decode("latin-1")))
    if call.load_only and endpoint.loaded is not None:
        gateway.metrics.request(protocol, call.model, "", "200", None)
        return json_response(endpoint.loaded(call))
    try:
        if call.stream:
            return await _stream(request, gateway, endpoint, call, started, seen)
        return await _complete(request, gateway, endpoint, call, started, seen)
    except ClientDisconnected:
        gateway.metrics.request(protocol, call.model, "", str(CLIENT_CLOSED), None)
        return Response(status_code=CLIENT_CLOSED)
    except GatewayError as error:
        return _failed(gateway, protocol, call, error, started, 0.0)
    except Exception:  # a bug must still answer in the protocol's shape, without a traceback
        log.exception("gateway_request_failed", model=call.model, protocol=protocol.value)
        failure = GatewayError(500, "internal gateway error", code="internal_error")
        return _failed(gateway, protocol, call, failure, started, 0.0)


async def _complete(
    request: Request,
    gateway: Gateway,
    endpoint: Endpoint,
    call: RouterCall,
    started: float,
    seen: tuple[str, ...],
) -> Response:
    protocol = endpoint.protocol
    waited = 0.0
    async with CancelOnDisconnect(request.receive, gateway.disconnects):
        calling = time.perf_counter()
        try:
            result = await route(gateway.router, call, seen)
        except LLMRouterError as error:
            waited = time.perf_counter() - calling
            gateway.metrics.routed_error(call.model, error)
            return _failed(gateway, protocol, call, from_router_error(error), started, waited)
        waited = time.perf_counter() - calling
    body = orjson.dumps(endpoint.render(call, result, time.perf_counter() - started))
    headers = routed_headers(
        gateway, call, result.backend, result.endpoint, result.max_tokens_capped
    )
    if result.fallback_from:
        headers.append(header("x-llm-fallback-from", result.fallback_from))
        gateway.metrics.fallback(call.model, result.fallback_from, result.backend)
    elapsed = time.perf_counter() - started
    headers.append((b"x-llm-overhead-ms", overhead_header(elapsed - waited).encode()))
    gateway.metrics.request(
        protocol,
        call.model,
        result.backend,
        "200",
        elapsed,
        result.prompt_tokens,
        result.completion_tokens,
    )
    return RawResponse(body, headers=headers)


def routed_headers(
    gateway: Gateway, call: RouterCall, backend: str, endpoint: str, capped: int | None
) -> Headers:
    """The headers of an answer a backend gave, in bytes: who answered, and how."""
    headers = [
        (b"x-llm-backend", backend.encode("latin-1")),
        (b"x-llm-endpoint", endpoint.encode("latin-1")),
    ]
    if capped is not None:
        headers.append((CAPPED_HEADER_BYTES, b"%d" % capped))
    if not gateway.router.has_config(call.model):
        headers.append(DEFAULT_ROUTE)
    return headers


async def _stream(
    request: Request,
    gateway: Gateway,
    endpoint: Endpoint,
    call: RouterCall,
    started: float,
    seen: tuple[str, ...],
) -> Response:
    """Pull the first chunk before answering: fallback stays invisible, an early failure
    gets a real status, and the headers can name the backend."""
    protocol = endpoint.protocol
    routed = open_stream(gateway.router, call, seen)
    # Made before the wait, not between the first chunk and the first byte.
    encoder = endpoint.encoder(call, started)
    calling = time.perf_counter()
    opened = False
    try:
        async with CancelOnDisconnect(request.receive, gateway.disconnects):
            first = await first_chunk(routed)
        opened = True
    except LLMRouterError as error:
        waited = time.perf_counter() - calling
        gateway.metrics.routed_error(call.model, error)
        return _failed(gateway, protocol, call, from_router_error(error), started, waited)
    finally:
        if not opened:
            await routed.aclose()
    first_at = time.perf_counter()
    waited = first_at - calling
    backend = routed.backend or ""
    headers = routed_headers(
        gateway, call, backend, routed.endpoint or "", routed.max_tokens_capped
    )
    if routed.fallback_from:
        headers.append(header("x-llm-fallback-from", routed.fallback_from))
        gateway.metrics.fallback(call.model, routed.fallback_from, backend)
    metrics = gateway.metrics

    def on_end(status: str, failure: GatewayError | None) -> None:
        # The first chunk's time is recorded here, after the first byte has gone out.
        metrics.first_token(call.model, backend, first_at - started)
        if failure is not None:
            metrics.upstream_error(call.model, backend, failure.code or "error")
        final = routed.final
        metrics.request(
            protocol,
            call.model,
            backend,
            status,
            time.perf_counter() - started,
            final.prompt_tokens if final is not None else None,
            final.completion_tokens if final is not None else None,
        )

    body = stream_body(routed, first, encoder, on_end)
    overhead = overhead_header(time.perf_counter() - started - waited)
    headers.append((b"x-llm-overhead-ms", overhead.encode()))
    return RoutedStreamingResponse(
        body, media_type=encoder.media_type, headers=headers, watch=gateway.disconnects
    )


def _failed(
    gateway: Gateway,
    protocol: Protocol,
    call: RouterCall,
    error: GatewayError,
    started: float,
    waited: float,
) -> Response:
    elapsed = time.perf_counter() - started
    routed = error.backend is not None
    gateway.metrics.request(
        protocol, call.model, error.backend or "", str(error.status), elapsed if routed else None
    )
    return error_response(protocol, error, elapsed - waited)


def route(router: LLMRouter, call: RouterCall, seen: tuple[str, ...] = ()) -> Awaitable[Result]:
    """`seen`: the gateways the request already passed through (sent on, see hops). The
    router's own coroutine, not a wrapper: every await level is paid again on each resume."""
    return router.complete(call.model, _with_hops(call.request, seen))


def open_stream(router: LLMRouter, call: RouterCall, seen: tuple[str, ...] = ()) -> RoutedStream:
    return router.stream_request(call.model, _with_hops(call.request, seen))


def _with_hops(request: CompletionRequest, seen: tuple[str, ...]) -> CompletionRequest:
    return replace(request, hops=seen) if seen else request
