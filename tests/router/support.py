"""Test doubles of the router tests: a fake Admin API, a fake clock, an in-memory config
source and a recording stats sink."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from llm_backends.router.config_source import ConfigSourceUnavailable
from llm_backends.router.stats import ModelStats
from llm_backends.router.types import BackendConfig
from llm_backends.settings import Settings
from tests.fakes.common import pause

MODEL = "phi3:mini"


class FakeClock:
    """A monotonic clock tests move by hand, so TTLs and cooldowns need no sleeps."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class AdminState:
    """What the fake Admin API serves and what it has received."""

    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Answer config lookups with this status (e.g. 500) instead of the configs.
    status: int | None = None
    #: Config lookups wait until the client leaves (a hung Admin API).
    hang: bool = False
    #: Config lookups answer after this many seconds (a slow Admin API).
    lookup_delay: float = 0.0
    #: Raw (still percent-encoded) paths of the config lookups, in order.
    lookups: list[str] = field(default_factory=list)
    #: (headers, body) of every metrics POST.
    reports: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    metrics_status: int = 200
    #: The change feed: its version, (model_name, version) entries, and the polls received.
    feed_version: int = 0
    feed_changes: list[tuple[str | None, int]] = field(default_factory=list)
    feed_polls: list[str] = field(default_factory=list)
    #: Answer change-feed polls with this status instead (e.g. 503).
    feed_status: int | None = None

    def change(self, *model_names: str | None) -> None:
        """Record a config change in the feed (as a write to the real store does)."""
        self.feed_version += 1
        self.feed_changes.extend((name, self.feed_version) for name in model_names or [None])

    def reset(self) -> None:
        self.configs.clear()
        self.status = None
        self.hang = False
        self.lookup_delay = 0.0
        self.lookups.clear()
        self.reports.clear()
        self.metrics_status = 200
        self.feed_version = 0
        self.feed_changes.clear()
        self.feed_polls.clear()
        self.feed_status = None


def admin_app(state: AdminState) -> FastAPI:
    app = FastAPI()

    @app.get("/api/llm-backends/model/{name:path}")
    async def model_config(name: str, request: Request) -> Response:
        state.lookups.append(request.scope["raw_path"].decode())
        if state.hang:
            await pause(request, 30)
            return Response(status_code=504)
        if state.lookup_delay:
            await pause(request, state.lookup_delay)
        if state.status is not None:
            return JSONResponse({"detail": "boom"}, status_code=state.status)
        config = state.configs.get(name)
        if config is None:
            # The real Admin API answers a disabled config with 200 and "enabled": false.
            return JSONResponse({"detail": f"Backend not found for model: {name}"}, 404)
        return JSONResponse(config)

    @app.get("/api/llm-backends/changes")
    async def changes(request: Request) -> Response:
        """The real feed's answers; a poll with nothing new is held until the client leaves
        or a change is recorded (checked every 10 ms: a fake, the real one is woken)."""
        state.feed_polls.append(request.url.query)
        if state.feed_status is not None:
            return JSONResponse({"detail": "down"}, status_code=state.feed_status)
        since = request.query_params.get("since")
        if since is not None:
            deadline = asyncio.get_running_loop().time() + float(
                request.query_params.get("timeout", "30")
            )
            while state.feed_version == int(since) and state.feed_status is None:
                if asyncio.get_running_loop().time() > deadline or await pause(request, 0.01):
                    break
        listed = [
            {"model_name": name, "version": version}
            for name, version in state.feed_changes
            if since is None or version > int(since)
        ]
        return JSONResponse({"version": state.feed_version, "changes": listed if since else []})

    @app.post("/api/llm-backends/metrics")
    async def metrics(request: Request) -> Response:
        state.reports.append((dict(request.headers), await request.json()))
        return Response(status_code=state.metrics_status)

    return app


@dataclass
class FakeAdmin:
    url: str
    state: AdminState

    def add(self, model_name: str, backend_type: str, endpoint_url: str, **extra: Any) -> None:
        self.state.configs[model_name] = {
            "id": len(self.state.configs) + 1,
            "model_name": model_name,
            "backend_type": backend_type,
            "endpoint_url": endpoint_url,
            "enabled": True,
            "max_tokens": 2048,
            "temperature_default": 0.7,
            "timeout_seconds": 10,
            "description": None,
            **extra,
        }


class DictSource:
    """An in-memory ConfigSource (what a gateway's store-backed source looks like).

    `gate`, when set, holds every lookup until the test opens it; `down` makes lookups fail.
    """

    def __init__(self) -> None:
        self.configs: dict[str, BackendConfig] = {}
        self.calls: list[str] = []
        self.down = False
        self.gate: asyncio.Event | None = None
        #: Set when a lookup has started (so tests can wait for it instead of sleeping).
        self.entered = asyncio.Event()

    async def get(self, model_name: str) -> BackendConfig | None:
        self.calls.append(model_name)
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise ConfigSourceUnavailable("store is down")
        return self.configs.get(model_name)

    async def until_calls(self, count: int) -> None:
        """Wait until `count` lookups have started (5 s guard against a hang)."""
        async with asyncio.timeout(5):
            while len(self.calls) < count:
                self.entered.clear()
                await self.entered.wait()

    def add(self, model_name: str, backend_type: str, endpoint_url: str, **extra: Any) -> None:
        self.configs[model_name] = BackendConfig(
            model_name=model_name,
            backend_type=backend_type,
            endpoint_url=endpoint_url,
            **{"timeout_seconds": 10.0, **extra},
        )


class RecordingSink:
    """A StatsSink keeping every batch; `fail` makes reports raise."""

    def __init__(self) -> None:
        self.batches: list[list[ModelStats]] = []
        self.fail = False
        self.reported = asyncio.Event()

    async def report(self, batch: list[ModelStats]) -> None:
        if self.fail:
            raise RuntimeError("sink is down")
        self.batches.append(batch)
        self.reported.set()


class _LeaveDefault:
    """Marker for make_router: don't pass stats_sink, let library mode pick the sink."""


LEAVE_DEFAULT = _LeaveDefault()


def router_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "admin_api_url": "http://127.0.0.1:9",
        "ollama_url": "http://127.0.0.1:9",
        "admin_api_token": None,
        "llm_router_fetch_timeout": 0.5,
        "llm_router_connect_timeout": 0.5,
        "metrics_report_interval": 3600.0,
        # The change feed has its own tests (test_follow.py); here it would be one more client.
        "llm_router_follow_changes": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def token() -> str:
    return "tok-" + secrets.token_hex(8)
