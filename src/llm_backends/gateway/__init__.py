"""OpenAI- and Ollama-compatible facades over the router, served by the Admin API's app.

`install_gateway(app)` adds the routes; `start_gateway(...)` (in the app's lifespan) makes the
one LLMRouter they share, over the store in this process.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from llm_backends.gateway import (
    catalog,
    catalog_docs,
    docs,
    embeddings_api,
    metrics_api,
    ollama_api,
    openai_api,
)
from llm_backends.gateway.fastpath import DirectDispatch, FastPathAPI, direct_routes
from llm_backends.gateway.flow import handle
from llm_backends.gateway.http_errors import install_protocol_errors
from llm_backends.gateway.service import Gateway, start_gateway

__all__ = ["Gateway", "components", "install_gateway", "start_gateway"]


def install_gateway(app: FastPathAPI) -> None:
    """Declare the gateway routes, and dispatch the generation ones directly (see fastpath);
    404/405/413 on gateway paths answer in the path's protocol."""
    install_protocol_errors(app)
    app.include_router(openai_api.router)
    app.include_router(ollama_api.router)
    app.include_router(metrics_api.router)
    app.include_router(embeddings_api.openai_router)
    app.include_router(embeddings_api.ollama_router)
    generation = (
        openai_api.chat_completions,
        openai_api.completions,
        ollama_api.generate,
        ollama_api.chat,
        embeddings_api.openai_embeddings,
        embeddings_api.ollama_embed,
        embeddings_api.ollama_embeddings,
    )
    declared = [
        *openai_api.router.routes,
        *ollama_api.router.routes,
        *embeddings_api.openai_router.routes,
        *embeddings_api.ollama_router.routes,
    ]
    shortcuts = {
        openai_api.chat_completions: partial(handle, endpoint=openai_api.CHAT),
        openai_api.completions: partial(handle, endpoint=openai_api.COMPLETION),
        ollama_api.generate: partial(handle, endpoint=ollama_api.GENERATE),
        ollama_api.chat: partial(handle, endpoint=ollama_api.CHAT),
    }
    app.direct = DirectDispatch(direct_routes(declared, generation, shortcuts))


def components() -> dict[str, Any]:
    """Every schema the gateway routes refer to, for the app's `components.schemas`."""
    schemas = docs.components()
    for model in (*embeddings_api.DOCUMENTED, *catalog_docs.DOCUMENTED, catalog.ShowRequest):
        schema = model.model_json_schema(ref_template=docs.REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas
