"""What models the gateway offers, in each protocol: /v1/models, /api/tags, /api/show.

Lists are the enabled configs, ordered by model name (read from the store: listing is rare,
not the hot path). `show` answers from the router's view of a model, so it tells what would
really answer, including the default Ollama for a model without a config.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from llm_backends.admin.errors import DATABASE_ERRORS
from llm_backends.gateway.errors import GatewayError, Protocol
from llm_backends.gateway.flow import error_response, gateway_of, json_response, read_body
from llm_backends.gateway.schemas import OllamaShowRequest, parse
from llm_backends.router.core import LLMRouter
from llm_backends.router.types import BackendConfig
from llm_backends.store import backends as store
from llm_backends.store.models import LLMBackend

#: The Ollama API version this gateway speaks (clients gate features on it).
OLLAMA_API_VERSION = "0.12.0"


def openai_models(rows: Sequence[LLMBackend]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {
                "id": row.model_name,
                "object": "model",
                "created": int(row.created_at.timestamp()),
                "owned_by": row.backend_type,
            }
            for row in rows
        ],
    }


def ollama_tags(rows: Sequence[LLMBackend]) -> dict[str, Any]:
    return {
        "models": [
            {
                "name": row.model_name,
                "model": row.model_name,
                "modified_at": row.updated_at.isoformat().replace("+00:00", "Z"),
                "size": 0,
                "digest": _digest(row),
                "details": _details(row.backend_type),
            }
            for row in rows
        ]
    }


def ollama_show(config: BackendConfig) -> dict[str, Any]:
    served = config.backend_model or config.model_name
    return {
        "modelfile": f"# answered by llm-backends through {config.backend_type}\nFROM {served}\n",
        "parameters": (
            f"temperature {config.temperature_default:g}\nnum_predict {config.max_tokens}"
        ),
        "template": "{{ .Prompt }}",
        "details": _details(config.backend_type),
        "model_info": {
            "general.architecture": "",
            "llm_backends.backend_type": config.backend_type,
            "llm_backends.backend_model": served,
        },
        "capabilities": ["completion"],
    }


def default_server_models(router: LLMRouter) -> list[tuple[str, str]]:
    """(server url, model name) of every model the default Ollama servers (OLLAMA_URL, a
    comma-separated list) served at their last health probe, in OLLAMA_URL order: what
    /api/tags and /v1/models add to the configured models."""
    servers = router.fleet.monitor.servers
    return [(url, model) for url in router.ollama_urls for model in servers[url].models]


def ollama_version() -> dict[str, str]:
    return {"version": OLLAMA_API_VERSION}


def _details(backend_type: str) -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": backend_type,
        "family": "",
        "families": None,
        "parameter_size": "",
        "quantization_level": "",
    }


def _digest(row: LLMBackend) -> str:
    """Changes whenever the config does, which is what clients use a digest for."""
    key = f"{row.id}\0{row.model_name}\0{row.updated_at.isoformat()}"
    return hashlib.sha256(key.encode()).hexdigest()


async def list_models(
    request: Request, protocol: Protocol, render: Callable[[Sequence[LLMBackend]], Any]
) -> Response:
    """The enabled configs, rendered for `protocol`; 503 in its shape if the store is down."""
    started = time.perf_counter()
    gateway = gateway_of(request)
    try:
        await gateway.auth.check(request)
        try:
            async with gateway.sessions() as session:
                rows = await store.list_backends(session, enabled_only=True)
        except DATABASE_ERRORS as error:
            raise GatewayError(
                503,
                "Config store unavailable: the database cannot be reached, try again",
                code="database_unavailable",
                headers={"Retry-After": "5"},
            ) from error
    except GatewayError as error:
        return error_response(protocol, error, time.perf_counter() - started)
    return json_response(render(rows))


async def show(request: Request) -> Response:
    started = time.perf_counter()
    gateway = gateway_of(request)
    try:
        await gateway.auth.check(request)
        body = parse(OllamaShowRequest, await read_body(request))
    except GatewayError as error:
        return error_response(Protocol.OLLAMA, error, time.perf_counter() - started)
    return json_response(ollama_show(await gateway.router.resolve(body.model)))


async def version(request: Request) -> Response:
    started = time.perf_counter()
    try:
        await gateway_of(request).auth.check(request)
    except GatewayError as error:
        return error_response(Protocol.OLLAMA, error, time.perf_counter() - started)
    return json_response(ollama_version())
