"""The gateway's per-app objects, made in the app's lifespan and kept in `app.state.gateway`."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm_backends.admin.auth import Authenticator
from llm_backends.gateway.auth import GatewayAuth
from llm_backends.gateway.metrics import GatewayMetrics
from llm_backends.gateway.sources import StoreConfigSource, StoreStatsSink
from llm_backends.router.core import LLMRouter
from llm_backends.settings import Settings
from llm_backends.store.events import ConfigChanges


@dataclass(frozen=True, slots=True)
class Gateway:
    router: LLMRouter
    metrics: GatewayMetrics
    auth: GatewayAuth
    sessions: async_sessionmaker[AsyncSession]

    async def close(self) -> None:
        """Report pending stats to the store and close the backend connections."""
        await self.router.close()


def start_gateway(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    authenticator: Authenticator,
    changes: ConfigChanges,
) -> Gateway:
    """One router over the store; an Admin API write drops its cached config at once."""
    router = LLMRouter(
        settings=settings,
        config_source=StoreConfigSource(sessions, timeout=settings.llm_router_fetch_timeout),
        stats_sink=StoreStatsSink(sessions),
    )
    changes.subscribe(router.invalidate)
    return Gateway(
        router=router,
        metrics=GatewayMetrics(router.breaker_states, configured=router.has_config),
        auth=GatewayAuth(authenticator, required=settings.gateway_require_auth),
        sessions=sessions,
    )
