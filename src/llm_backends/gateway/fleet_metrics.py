"""Fleet gauges on /metrics, read from the router at scrape time (like the breaker gauge)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from llm_backends.gateway.errors import redact
from llm_backends.router.fleet import FleetBoard


class FleetCollector(Collector):
    """`llm_backend_server_healthy{url}`, `llm_backend_server_probe_latency_seconds{url}`,
    `llm_backend_server_in_flight{model,url}` and `llm_backend_server_queued{model,url}`."""

    def __init__(self, board: FleetBoard) -> None:
        self._board = board

    def collect(self) -> Iterator[Metric]:
        healthy = GaugeMetricFamily(
            "llm_backend_server_healthy",
            "1 when the server's last health probe passed, else 0.",
            labels=["url"],
        )
        latency = GaugeMetricFamily(
            "llm_backend_server_probe_latency_seconds",
            "Duration of the server's last passed health probe.",
            labels=["url"],
        )
        for url, health in sorted(self._board.monitor.servers.items()):
            healthy.add_metric([redact(url)], 1.0 if health.healthy else 0.0)
            if health.probe_latency_ms is not None:
                latency.add_metric([redact(url)], health.probe_latency_ms / 1000.0)
        in_flight = GaugeMetricFamily(
            "llm_backend_server_in_flight",
            "Requests in flight per model and server (model '' = models without a config).",
            labels=["model", "url"],
        )
        queued = GaugeMetricFamily(
            "llm_backend_server_queued",
            "Requests waiting for a place at a server at its max_concurrency.",
            labels=["model", "url"],
        )
        for (model, url), slot in sorted(self._board.slots().items()):
            in_flight.add_metric([model, redact(url)], float(slot.in_flight))
            queued.add_metric([model, redact(url)], float(len(slot.waiters)))
        yield healthy
        yield latency
        yield in_flight
        yield queued
