"""The gateway's side of loop protection (see `llm_backends.hops`): refuse a request that
already passed through this process, in the client's protocol, naming the config that sent
it back here."""

from __future__ import annotations

from llm_backends import hops
from llm_backends.gateway.errors import GatewayError
from llm_backends.router.core import LLMRouter


async def loop_refusal(router: LLMRouter, model: str, seen: tuple[str, ...]) -> GatewayError:
    """508 Loop Detected, naming the model's config here (or the default Ollama) as the one
    that leads back to this gateway. Only called for a refused request, never on the hot path."""
    config = await router.resolve(model)
    message = hops.loop_message(model, seen, config.endpoint_url, is_default=config.id is None)
    return GatewayError(hops.LOOP_STATUS, message, code="loop_detected")
