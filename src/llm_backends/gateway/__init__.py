"""OpenAI- and Ollama-compatible facades over the router, served by the Admin API's app.

`install_gateway(app)` adds the routes; `start_gateway(...)` (in the app's lifespan) makes the
one LLMRouter they share, over the store in this process.
"""

from __future__ import annotations

from llm_backends.gateway import metrics_api, ollama_api, openai_api
from llm_backends.gateway.docs import components
from llm_backends.gateway.fastpath import DirectDispatch, FastPathAPI, direct_routes
from llm_backends.gateway.service import Gateway, start_gateway

__all__ = ["Gateway", "components", "install_gateway", "start_gateway"]


def install_gateway(app: FastPathAPI) -> None:
    """Declare the gateway routes, and dispatch the generation ones directly (see fastpath)."""
    app.include_router(openai_api.router)
    app.include_router(ollama_api.router)
    app.include_router(metrics_api.router)
    generation = (
        openai_api.chat_completions,
        openai_api.completions,
        ollama_api.generate,
        ollama_api.chat,
    )
    routes = direct_routes([*openai_api.router.routes, *ollama_api.router.routes], generation)
    app.direct = DirectDispatch(routes)
