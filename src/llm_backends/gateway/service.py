"""The gateway's per-app objects, made in the app's lifespan and kept in `app.state.gateway`."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm_backends.admin.auth import Authenticator
from llm_backends.gateway.auth import GatewayAuth
from llm_backends.gateway.disconnect import DisconnectWatch
from llm_backends.gateway.discovery import Discovery
from llm_backends.gateway.fleet_metrics import FleetCollector
from llm_backends.gateway.metrics import GatewayMetrics
from llm_backends.gateway.sources import StoreConfigSource, StoreStatsSink, start_probes
from llm_backends.gateway.timeseries import Timeseries, TrackingConfigSource
from llm_backends.router.core import LLMRouter
from llm_backends.settings import Settings
from llm_backends.store.crypto import SecretBox
from llm_backends.store.events import ConfigChanges


@dataclass(frozen=True, slots=True)
class Gateway:
    router: LLMRouter
    metrics: GatewayMetrics
    auth: GatewayAuth
    sessions: async_sessionmaker[AsyncSession]
    #: /api/show, /api/ps and the default Ollama's model list (asks the backends).
    discovery: Discovery
    #: The admin page's last hour per configured model (each process its own).
    timeseries: Timeseries
    #: Disconnect watches of the requests waiting on the router (see disconnect).
    disconnects: DisconnectWatch = field(default_factory=DisconnectWatch)

    async def close(self) -> None:
        """Report pending stats to the store and close the backend connections."""
        await self.router.close()
        await self.discovery.close()


def start_gateway(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    authenticator: Authenticator,
    changes: ConfigChanges,
) -> Gateway:
    """One router over the store; an Admin API write drops its cached config at once."""
    timeseries = Timeseries()
    source = StoreConfigSource(
        sessions,
        timeout=settings.llm_router_fetch_timeout,
        secret_box=SecretBox(settings.secret_key, settings.secret_key_file),
    )
    router = LLMRouter(
        settings=settings,
        config_source=TrackingConfigSource(source, timeseries),
        stats_sink=StoreStatsSink(sessions),
    )
    changes.subscribe(router.invalidate)
    start_probes(router, sessions)
    metrics = GatewayMetrics(router.breaker_states, configured=router.has_config)
    metrics.registry.register(FleetCollector(router.fleet))
    metrics.observer = timeseries.record
    return Gateway(
        router=router,
        metrics=metrics,
        auth=GatewayAuth(authenticator, required=settings.gateway_require_auth),
        sessions=sessions,
        discovery=Discovery(router, settings),
        timeseries=timeseries,
    )
