"""The last hour per configured model: per-minute rings, fixed memory, served for the charts."""

from __future__ import annotations

import sys

import httpx

from llm_backends.gateway.timeseries import MINUTES, Timeseries
from tests.conftest import LiveServer
from tests.fakes.common import FakeServer
from tests.fakes.fake_openai import OpenAIBehaviour


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000 * 60.0

    def __call__(self) -> float:
        return self.now


def test_counts_per_minute_with_errors_and_mean_latency() -> None:
    clock = Clock()
    series = Timeseries(clock)
    series.configured("a")
    series.record("a", "200", 0.1)
    series.record("a", "200", 0.3)
    series.record("a", "502", 0.2)
    series.record("a", "499", None)  # the client left: counted, not an error, no latency
    clock.now += 60
    series.record("a", "200", 0.05)
    snap = series.snapshot()["models"]["a"]
    assert len(snap["requests"]) == MINUTES
    assert snap["requests"][-2:] == [4, 1]
    assert snap["errors"][-2:] == [1, 0]
    assert snap["latency_ms"][-2:] == [200.0, 50.0]
    assert snap["latency_ms"][0] is None and snap["requests"][0] == 0


def test_minutes_older_than_an_hour_are_forgotten() -> None:
    clock = Clock()
    series = Timeseries(clock)
    series.configured("a")
    series.record("a", "200", 0.1)
    clock.now += 60 * MINUTES  # the same slot, an hour later
    series.record("a", "200", 0.1)
    assert sum(series.snapshot()["models"]["a"]["requests"]) == 1
    clock.now += 60 * (MINUTES + 5)
    assert sum(series.snapshot()["models"]["a"]["requests"]) == 0


def test_only_configured_models_are_recorded_so_memory_is_fixed() -> None:
    series = Timeseries(Clock())
    series.configured("known")
    before = sys.getsizeof(series._rings)
    for i in range(10_000):
        series.record(f"client-invented-{i}", "200", 0.01)
    assert series.tracked() == {"known"}
    assert sys.getsizeof(series._rings) == before
    series.record("known", "200", 0.01)
    series.configured("known")  # looked up again: its history stays
    assert sum(series.snapshot("known")["models"]["known"]["requests"]) == 1
    assert series.snapshot("unknown")["models"] == {}


async def test_the_endpoint_serves_the_gateway_traffic_of_configured_models(
    live_server: LiveServer, fake_openai: FakeServer[OpenAIBehaviour]
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as client:
        auth = {"Authorization": f"Bearer {live_server.token}"}
        created = await client.post(
            "/api/llm-backends",
            headers=auth,
            json={
                "model_name": "charted",
                "backend_type": "openai",
                "endpoint_url": fake_openai.url,
            },
        )
        assert created.status_code == 201
        # No traffic yet: the gateway has not looked the model up, nothing is kept for it.
        snap = (await client.get("/api/llm-backends/timeseries", headers=auth)).json()
        assert snap["models"] == {}
        body = {"model": "charted", "messages": [{"role": "user", "content": "hi"}]}
        assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
        body["stream"] = True
        assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
        unknown = {"model": "not-configured", "prompt": "hi", "stream": False}
        await client.post("/api/generate", json=unknown)

        snap = (await client.get("/api/llm-backends/timeseries", headers=auth)).json()
        assert set(snap["models"]) == {"charted"}
        assert sum(snap["models"]["charted"]["requests"]) == 2
        assert snap["models"]["charted"]["latency_ms"][-1] is not None
        one = await client.get("/api/llm-backends/timeseries?model=charted", headers=auth)
        assert list(one.json()["models"]) == ["charted"]
        assert (await client.get("/api/llm-backends/timeseries")).status_code == 401
