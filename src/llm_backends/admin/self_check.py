"""Warnings about a config an operator writes: an `endpoint_url` that is this server's own
address would send its model's requests back here (the gateway refuses them as a loop, 508).
Given in the POST/PUT answer, not refused: a proxy or a port mapping may make it legitimate."""

from __future__ import annotations

import structlog
from starlette.requests import Request

from llm_backends import hops

log = structlog.get_logger("llm_backends.admin")


def own_addresses(request: Request) -> set[tuple[str, int]]:
    """(host, port) pairs that reach this server: the socket the request came in on, the
    Host the client used, and the configured HOST/PORT."""
    addresses: set[tuple[str, int]] = set()
    server = request.scope.get("server")
    if server and server[1] is not None:
        addresses.add((str(server[0]), int(server[1])))
    host_header = request.headers.get("host")
    if host_header:
        name, _, port = host_header.rpartition(":")
        if port.isdigit() and name:
            addresses.add((name, int(port)))
        elif not port.isdigit():
            addresses.add((host_header, 443 if request.url.scheme == "https" else 80))
    settings = getattr(request.app.state, "settings", None)
    if settings is not None:
        addresses.add((settings.host, settings.port))
    return addresses


def endpoint_warnings(request: Request, model_name: str, endpoint_url: str | None) -> list[str]:
    if endpoint_url is None or not hops.points_at(endpoint_url, own_addresses(request)):
        return []
    log.warning("backend_endpoint_is_this_server", model=model_name, endpoint_url=endpoint_url)
    return [
        f"endpoint_url {endpoint_url} is this llm-backends server's own address: requests for "
        f"'{model_name}' would come back here and be refused as a loop (508 Loop Detected). "
        "Point it at the inference server (Ollama, mlx_lm.server, vLLM) instead."
    ]
