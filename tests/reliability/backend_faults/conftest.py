"""Fixtures of the backend-fault suite: one gateway for the whole package (over a SQLite file
of its own, so it needs no `database_url` and leaves the other reliability tests alone), the
faulty servers, and the capture of what the app logs.

The gateway is the real app on uvicorn in a thread of this process, so its file descriptors,
its loop's tasks and its pool can be counted. Breakers never open here (a high threshold):
each test sees its own fault, not the previous test's open circuit.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send
from structlog.testing import capture_logs

from llm_backends.app import create_app
from llm_backends.store import migrate
from tests.conftest import make_settings
from tests.fakes.common import FakeServer
from tests.fakes.raw_tcp import RawServer, raw_server
from tests.fakes.server import ServerThread, free_port
from tests.reliability.backend_faults.support import (
    BOUND,
    LIMIT,
    TIMEOUT,
    AppLogRecords,
    AppLogs,
    Fault,
    app_threads,
    port_of,
)

T = TypeVar("T")

#: Healthy configs every test warms the pools with (and checks recovery against).
WARM = {"ollama": "warm-ollama", "openai": "warm-openai", "auto": "warm-auto"}

#: Settings of every router under test.
ROUTER_SETTINGS: dict[str, Any] = {
    "breaker_failure_threshold": 1_000_000,
    # A timed probe round reads the store and opens, reuses or lets expire pooled connections
    # to every server: between a leak check's two counts it shows up as a descriptor more or
    # less. Only the first round runs (at start, awaited by the fixtures).
    "health_check_interval": 3600.0,
    "max_backend_response_bytes": LIMIT,
    "metrics_report_interval": 3600.0,
}


#: One TLS context for every client of the suite: httpx builds one per client otherwise
#: (~40 ms each), although every call here is plain HTTP on loopback.
_TLS = ssl.create_default_context()


class LoopCapture:
    """ASGI wrapper noting the server's event loop (to count its tasks from the test)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)


@dataclass
class FaultGateway:
    """The running app: its URL, its loop, its thread and its router."""

    url: str
    token: str
    app: FastAPI
    loop: asyncio.AbstractEventLoop
    thread_ident: int

    @property
    def router(self) -> Any:
        return self.app.state.gateway.router

    async def in_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` in the server's loop (where the router lives) and await it here."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self.loop))

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def add(self, model: str, backend_type: str, endpoint_url: str) -> None:
        """Create a config through the Admin API, as an operator would (outside a test)."""
        with httpx.Client(base_url=self.url, timeout=30, verify=_TLS) as admin:
            response = admin.post(
                "/api/llm-backends",
                json=config_body(model, backend_type, endpoint_url),
                headers=self.auth,
            )
        assert response.status_code == 201, response.text

    @asynccontextmanager
    async def client(self) -> AsyncIterator[GatewayClient]:
        """A client whose every wait is bounded by the timeout plus the margin.

        One per test: its single keep-alive connection is part of the leak baseline.
        """
        async with httpx.AsyncClient(base_url=self.url, timeout=BOUND, verify=_TLS) as http:
            yield GatewayClient(http, self.auth)


@dataclass
class GatewayClient:
    """The calls a test makes besides generation: Admin API and metrics."""

    http: httpx.AsyncClient
    auth: dict[str, str]

    async def add(self, model: str, backend_type: str, endpoint_url: str) -> dict[str, Any]:
        body = config_body(model, backend_type, endpoint_url)
        response = await self.http.post("/api/llm-backends", json=body, headers=self.auth)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def config(self, config_id: int) -> dict[str, Any]:
        response = await self.http.get(f"/api/llm-backends/{config_id}", headers=self.auth)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def metrics(self) -> str:
        response = await self.http.get("/metrics")
        assert response.status_code == 200
        return response.text


def config_body(model: str, backend_type: str, endpoint_url: str) -> dict[str, Any]:
    return {
        "model_name": model,
        "backend_type": backend_type,
        "endpoint_url": endpoint_url,
        "timeout_seconds": TIMEOUT,
    }


@pytest.fixture(scope="package")
def fault_gateway(
    tmp_path_factory: pytest.TempPathFactory,
    fake_ollama_server: FakeServer,
    fake_openai_server: FakeServer,
) -> Iterator[FaultGateway]:
    url = f"sqlite:///{tmp_path_factory.mktemp('backend-faults') / 'store.db'}"
    migrate.upgrade(url)
    # The version poll reads the store on a timer (as the stats timer would write it): off
    # here, so it can't open a pooled connection between a leak check's two counts.
    settings = make_settings(
        url, ollama_url=fake_ollama_server.url, config_poll_seconds=3600.0, **ROUTER_SETTINGS
    )
    app = create_app(settings)
    capture = LoopCapture(app)
    thread = ServerThread(capture).start()
    assert capture.loop is not None and thread.thread.ident is not None
    token = settings.admin_api_token.get_secret_value() if settings.admin_api_token else ""
    gateway = FaultGateway(thread.url, token, app, capture.loop, thread.thread.ident)
    # The start's probe round (the only one: `health_check_interval`) is over before any count.
    first_round = gateway.router.fleet.monitor.first_round()
    asyncio.run_coroutine_threadsafe(first_round, gateway.loop).result(timeout=BOUND)
    gateway.add(WARM["ollama"], "ollama", fake_ollama_server.url)
    gateway.add(WARM["openai"], "openai", fake_openai_server.url)
    gateway.add(WARM["auto"], "auto", fake_openai_server.url)
    try:
        yield gateway
    finally:
        thread.stop()


@pytest.fixture
def refused_url() -> str:
    """A loopback URL where nothing listens: connecting is refused at once."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture
def app_logs(request: pytest.FixtureRequest) -> Iterator[AppLogs]:
    """What the app logs during the test (router and gateway; not the fakes' own logs)."""
    # Servers configure uvicorn's loggers when they start: start them before listening.
    request.getfixturevalue("fake_ollama_server")
    request.getfixturevalue("fake_openai_server")
    threads = app_threads()
    if "fault_gateway" in request.fixturenames:
        threads |= app_threads(request.getfixturevalue("fault_gateway").thread_ident)
    handler = AppLogRecords(threads)
    # uvicorn's loggers don't propagate to the root logger: listen on both.
    loggers = [logging.getLogger(), logging.getLogger("uvicorn")]
    for logger in loggers:
        logger.addHandler(handler)
    try:
        with capture_logs() as events:
            yield AppLogs(handler, events)
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


@dataclass
class FaultyServer:
    """Where a test's faulty backend listens, and how to turn its fault on and off."""

    fault: Fault
    url: str
    fake: FakeServer | None = None
    raw: RawServer | None = None
    _seen: int = 0

    @property
    def port(self) -> int:
        return port_of(self.url)

    def break_(self) -> None:
        if self.fake is not None:
            self._seen = len(self.fake.bodies)
            self.fake.configure(**self.fault.knobs)

    def heal(self) -> None:
        if self.fake is not None:
            self.fake.reset()

    def was_hit(self) -> bool:
        """The faulty server got the request (a refused connection counts: nothing listens)."""
        if self.fake is not None:
            return len(self.fake.bodies) > self._seen
        if self.raw is not None:
            return self.raw.accepted > 0
        return True


@pytest.fixture
def faulty_server(fake_ollama: FakeServer, fake_openai: FakeServer, refused_url: str) -> Any:
    """`with faulty_server(fault, backend) as server:` the backend a test breaks."""

    @contextmanager
    def make(fault: Fault, backend: str) -> Iterator[FaultyServer]:
        if fault.server == "refused":
            yield FaultyServer(fault, refused_url)
        elif fault.server == "silent":
            with raw_server("silent") as raw:
                yield FaultyServer(fault, raw.url, raw=raw)
        else:
            fake = fake_ollama if backend == "ollama" else fake_openai
            yield FaultyServer(fault, fake.url, fake=fake)

    return make
