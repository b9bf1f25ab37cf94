"""The fleet as an operator sees it: per config and per server, health and load.

Shape (GET /api/llm-backends/status, shared with the admin page):
{"configs": [{"id", "model_name", "backend_type", "enabled", "servers": [SERVER...]}],
 "default_servers": [SERVER...]}, SERVER = {"url", "healthy", "since", "last_error",
 "probe_latency_ms", "in_flight", "models"}.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from llm_backends.router.backends import AUTO
from llm_backends.router.fleet import DEFAULT_SLOT, FleetBoard
from llm_backends.router.types import BackendConfig


def fleet_status(board: FleetBoard, configs: Iterable[BackendConfig]) -> dict[str, Any]:
    """Every config's servers (tracked from now on, so the next probe round covers them)."""
    monitor = board.monitor
    out = []
    for config in configs:
        kind = "mlx" if config.backend_type == AUTO else config.backend_type
        servers = []
        for server in config.servers:
            health = monitor.track(server.url, kind)
            servers.append(health.as_dict(board.in_flight(config.model_name, server.url)))
        out.append(
            {
                "id": config.id,
                "model_name": config.model_name,
                "backend_type": config.backend_type,
                "enabled": config.enabled,
                "servers": servers,
            }
        )
    defaults = [
        monitor.servers[url].as_dict(board.in_flight(DEFAULT_SLOT, url)) for url in monitor.defaults
    ]
    return {"configs": out, "default_servers": defaults}


def server_targets(configs: Iterable[BackendConfig]) -> list[tuple[str, str]]:
    """(url, probe type) of every server the enabled configs name."""
    targets = []
    for config in configs:
        if not config.enabled:
            continue
        kind = "mlx" if config.backend_type == AUTO else config.backend_type
        targets.extend((server.url, kind) for server in config.servers)
    return targets
