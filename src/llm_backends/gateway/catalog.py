"""What models the gateway offers, in each protocol: /v1/models, /v1/models/{id}, /api/tags,
/api/show, /api/ps, /api/version.

A model without a config is served by the default Ollama, so the lists are the enabled configs
(from the store: listing is rare, not the hot path) followed by the default Ollama's own models
that no config claims (cached briefly, see discovery). `show` and `ps` ask the backends
themselves and answer under the gateway's model names.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import SkipJsonSchema
from starlette.requests import Request
from starlette.responses import Response

from llm_backends.admin.errors import DATABASE_ERRORS
from llm_backends.admin.schemas import ModelName
from llm_backends.gateway import model_info
from llm_backends.gateway.discovery import (
    BackendAnswerError,
    DefaultModel,
    Discovery,
    canonical,
    claimed_names,
    default_ollama_urls,
    same_model,
)
from llm_backends.gateway.errors import GatewayError, Protocol, bad_request
from llm_backends.gateway.flow import error_response, gateway_of, json_response, read_body
from llm_backends.gateway.schemas import parse
from llm_backends.gateway.service import Gateway
from llm_backends.router.core import LLMRouter
from llm_backends.router.fallback import Attempt, plan_route
from llm_backends.router.types import BackendConfig
from llm_backends.store import backends as store
from llm_backends.store.models import LLMBackend

#: The Ollama API version this gateway speaks (clients gate features on it).
OLLAMA_API_VERSION = "0.12.0"

Render = Callable[[Sequence[LLMBackend], Sequence[DefaultModel]], Any]


class ShowRequest(BaseModel):
    """`POST /api/show`: `model`, or the legacy `name` (litellm and Continue send it)."""

    model_config = ConfigDict(
        extra="ignore",
        strict=True,
        json_schema_extra={"anyOf": [{"required": ["model"]}, {"required": ["name"]}]},
    )

    model: ModelName | SkipJsonSchema[None] = None
    name: ModelName | SkipJsonSchema[None] = None
    #: Passed on to an Ollama (more `model_info`); other fields of Ollama's show request
    #: (`system`, `options`) only rewrite the modelfile it prints, and are ignored here.
    verbose: bool | None = None


def openai_models(rows: Sequence[LLMBackend], defaults: Sequence[DefaultModel]) -> dict[str, Any]:
    data = [
        model_info.openai_entry(row.model_name, int(row.created_at.timestamp()), row.backend_type)
        for row in rows
    ]
    data += [
        model_info.openai_entry(m.name, model_info.created_of_tag(m.entry), "ollama")
        for m in _unclaimed(rows, defaults)
    ]
    return {"object": "list", "data": data}


def ollama_tags(rows: Sequence[LLMBackend], defaults: Sequence[DefaultModel]) -> dict[str, Any]:
    models = [
        model_info.config_tag(
            row.model_name,
            row.backend_type,
            row.updated_at,
            f"{row.id}\0{row.model_name}\0{row.updated_at.isoformat()}",
        )
        for row in rows
    ]
    models += [dict(m.entry) for m in _unclaimed(rows, defaults)]
    return {"models": models}


def default_server_models(router: LLMRouter) -> list[tuple[str, str]]:
    """(server url, model name) of every model the default Ollama servers (OLLAMA_URL, a
    comma-separated list) served at their last health probe, in OLLAMA_URL order: what
    /api/tags and /v1/models add to the configured models."""
    servers = router.fleet.monitor.servers
    return [(url, model) for url in router.ollama_urls for model in servers[url].models]


def ollama_version() -> dict[str, str]:
    return {"version": OLLAMA_API_VERSION}


def _unclaimed(rows: Sequence[LLMBackend], defaults: Sequence[DefaultModel]) -> list[DefaultModel]:
    """The default Ollama's models whose name no enabled config takes (first URL wins)."""
    taken = claimed_names([row.model_name for row in rows])
    found: list[DefaultModel] = []
    for model in defaults:
        if model.name not in taken and canonical(model.name) not in taken:
            taken.add(model.name)
            found.append(model)
    return found


async def enabled_rows(gateway: Gateway) -> Sequence[LLMBackend]:
    try:
        async with gateway.sessions() as session:
            return await store.list_backends(session, enabled_only=True)
    except DATABASE_ERRORS as error:
        raise GatewayError(
            503,
            "Config store unavailable: the database cannot be reached, try again",
            code="database_unavailable",
            headers={"Retry-After": "5"},
        ) from error


async def list_models(request: Request, protocol: Protocol, render: Render) -> Response:
    """The enabled configs and the default Ollama's models, rendered for `protocol`."""
    started = time.perf_counter()
    gateway = gateway_of(request)
    try:
        await gateway.auth.check(request)
        rows, defaults = await asyncio.gather(
            enabled_rows(gateway), gateway.discovery.default_models()
        )
    except GatewayError as error:
        return error_response(protocol, error, time.perf_counter() - started)
    return json_response(render(rows, defaults))


async def retrieve_model(request: Request, model_id: str) -> Response:
    """`GET /v1/models/{id}`: a configured model, or one the default Ollama has; else 404."""
    started = time.perf_counter()
    gateway = gateway_of(request)
    try:
        await gateway.auth.check(request)
        rows, defaults = await asyncio.gather(
            enabled_rows(gateway), gateway.discovery.default_models()
        )
        listed = openai_models(rows, defaults)["data"]
        entry = next((e for e in listed if e["id"] == model_id), None)
        if entry is None:
            raise GatewayError(
                404,
                f"The model '{model_id}' does not exist: no enabled config names it and the "
                "default Ollama does not list it",
                code="model_not_found",
                param="model",
            )
    except GatewayError as error:
        return error_response(Protocol.OPENAI, error, time.perf_counter() - started)
    return json_response(entry)


async def show(request: Request) -> Response:
    """`POST /api/show`: the answering backend's own description, under the gateway's name."""
    started = time.perf_counter()
    gateway = gateway_of(request)
    try:
        await gateway.auth.check(request)
        body = parse(ShowRequest, await read_body(request))
        name = body.model or body.name
        if not name:
            raise bad_request("model: Field required (or the legacy name)", "model")
        config = await gateway.router.resolve(name)
        if config.id is None:  # no config: the default server that lists it answers
            config = await _on_default_server(gateway.discovery, config, name)
        route = plan_route(config, gateway.router.ollama_url)
        extra = {"verbose": body.verbose} if body.verbose is not None else {}
        answer = await _show_on_route(gateway.discovery, route.attempts, name, extra)
    except GatewayError as error:
        return error_response(Protocol.OLLAMA, error, time.perf_counter() - started)
    return json_response(answer)


async def _on_default_server(
    discovery: Discovery, config: BackendConfig, name: str
) -> BackendConfig:
    """The default config aimed at the first default Ollama (OLLAMA_URL may name several)
    whose list has `name`, as the listings showed it; unchanged when none lists it."""
    for model in await discovery.default_models():
        if same_model(model.name, name):
            return replace(config, endpoint_url=model.url)
    return config


async def _show_on_route(
    discovery: Discovery, attempts: Sequence[Attempt], name: str, extra: dict[str, Any]
) -> dict[str, Any]:
    """Ask each attempt in turn (auto: MLX, then Ollama) until one answers."""
    failure: GatewayError | None = None
    for attempt in attempts:
        try:
            if attempt.kind == "ollama":
                return await discovery.ollama_show(attempt, extra)
            entry = await discovery.openai_model(attempt)
            if entry is None and attempt.config.backend_model:
                raise BackendAnswerError(404, "not listed by the server's /v1/models")
            return model_info.built_show(attempt.config, attempt.kind, entry)
        except BackendAnswerError as error:
            status = 404 if error.status == 404 else 502
            failure = GatewayError(
                status,
                f"model '{name}' not found at its backend ({attempt.kind}): {error.message}"
                if status == 404
                else f"backend {attempt.kind} answered HTTP {error.status}: {error.message}",
                backend=attempt.kind,
            )
        except GatewayError as error:
            error.backend = attempt.kind
            failure = error
    assert failure is not None
    raise failure


async def ps(request: Request) -> Response:
    """`GET /api/ps`: what the Ollama backends have loaded, under the gateway's names."""
    started = time.perf_counter()
    gateway = gateway_of(request)
    try:
        await gateway.auth.check(request)
        rows = await enabled_rows(gateway)
    except GatewayError as error:
        return error_response(Protocol.OLLAMA, error, time.perf_counter() - started)
    defaults = default_ollama_urls(gateway.router)
    served = _ollama_names(rows, gateway.router.ollama_url)
    urls = list(dict.fromkeys([*served, *defaults]))
    loaded = await asyncio.gather(*(gateway.discovery.ollama_ps(url) for url in urls))
    taken = claimed_names([row.model_name for row in rows])
    models: list[dict[str, Any]] = []
    for url, entries in zip(urls, loaded, strict=True):
        for entry in entries:
            reported = str(entry.get("name") or entry.get("model") or "")
            names = [g for g, s in served.get(url, ()) if same_model(s, reported)]
            if url in defaults and reported not in taken and canonical(reported) not in taken:
                names.append(reported)
            models += [{**entry, "name": n, "model": n} for n in dict.fromkeys(names)]
    return json_response({"models": models})


def _ollama_names(rows: Sequence[LLMBackend], ollama_url: str) -> dict[str, list[tuple[str, str]]]:
    """Ollama endpoint -> [(gateway name, name the Ollama knows)] of the enabled configs."""
    served: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        if row.backend_type == "ollama":
            url, name = row.endpoint_url.rstrip("/"), row.backend_model or row.model_name
        elif row.backend_type == "auto":
            url, name = ollama_url.rstrip("/"), row.model_name
        else:
            continue
        served.setdefault(url, []).append((row.model_name, name))
    return served


async def version(request: Request) -> Response:
    started = time.perf_counter()
    try:
        await gateway_of(request).auth.check(request)
    except GatewayError as error:
        return error_response(Protocol.OLLAMA, error, time.perf_counter() - started)
    return json_response(ollama_version())
