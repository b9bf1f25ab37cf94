"""Every fault once more against a real `llm-backends serve` process (uvloop, httptools, the
production JSON logging): its whole output holds no traceback, and once the faulty servers
are gone the process holds no more file descriptors than after its warm-up.

The matrix (test_gateway_faults.py) checks each outcome in detail in-process; this is the
end-to-end complement, so all the faults run at once (each on a server of its own).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from tests.fakes.common import FakeServer
from tests.fakes.fixtures import running_fake_ollama
from tests.fakes.raw_tcp import raw_server
from tests.fakes.served import serve_process
from tests.fakes.server import free_port
from tests.reliability.backend_faults.support import (
    BOUND,
    FAULTS,
    LIMIT,
    MESSAGES,
    TIMEOUT,
    Fault,
    expected,
)

TOKEN = "served-faults-bootstrap-0123456789"


@dataclass
class Served:
    url: str
    pid: int
    output: list[str]

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))


@pytest.fixture
def served(tmp_path: Path, fake_ollama: FakeServer) -> Iterator[Served]:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}",
        "ADMIN_API_TOKEN": TOKEN,
        "OLLAMA_URL": fake_ollama.url,
        "MAX_BACKEND_RESPONSE_BYTES": str(LIMIT),
        "BREAKER_FAILURE_THRESHOLD": "1000000",
        "METRICS_REPORT_INTERVAL": "3600",
        # A timed probe round would pool connections of its own between the two counts.
        "HEALTH_CHECK_INTERVAL": "3600",
        "LOG_LEVEL": "INFO",
        "LOG_JSON": "true",
    }
    with serve_process(env) as process:
        yield Served(process.url, process.pid, process.output)


async def generate(
    client: httpx.AsyncClient, protocol: str, model: str, stream: bool
) -> httpx.Response:
    if protocol == "openai":
        body = {"model": model, "messages": MESSAGES, "stream": stream}
        return await client.post("/v1/chat/completions", json=body)
    return await client.post(
        "/api/generate", json={"model": model, "prompt": "hi", "stream": stream}
    )


def ends_with_error_event(response: httpx.Response) -> bool:
    last = response.text.strip().splitlines()[-1].removeprefix("data: ")
    return set(orjson.loads(last)) == {"error"}


async def test_a_served_process_survives_every_fault_cleanly(
    served: Served, fake_ollama: FakeServer
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=served.url, headers=headers, timeout=30) as admin:

        async def add(model: str, url: str) -> None:
            config = {"model_name": model, "backend_type": "ollama", "endpoint_url": url}
            response = await admin.post(
                "/api/llm-backends", json={**config, "timeout_seconds": TIMEOUT}
            )
            assert response.status_code == 201, response.text

        await add("warm", fake_ollama.url)
        with ExitStack() as servers:
            for fault in FAULTS:
                await add(fault.name, servers.enter_context(faulty(fault)))

            cells = [
                (fault, protocol, stream)
                for fault in FAULTS
                for protocol in ("openai", "ollama")
                for stream in (False, True)
            ]
            async with httpx.AsyncClient(base_url=served.url, timeout=BOUND) as client:
                for protocol in ("openai", "ollama"):
                    for stream in (False, True):
                        assert (await generate(client, protocol, "warm", stream)).status_code == 200
            # Concurrent config lookups grow the store's connection pool to its size (5 SQLite
            # connections, 3 descriptors each): grow it before the baseline too.
            lookups = [admin.get("/api/llm-backends/model/warm") for _ in range(16)]
            assert {r.status_code for r in await asyncio.gather(*lookups)} == {200}
            baseline = served.fds()

            limits = httpx.Limits(max_connections=len(cells))
            async with httpx.AsyncClient(
                base_url=served.url, timeout=BOUND, limits=limits
            ) as client:
                async with asyncio.timeout(BOUND):
                    responses = await asyncio.gather(
                        *(generate(client, p, fault.name, s) for fault, p, s in cells)
                    )
            for (fault, protocol, stream), response in zip(cells, responses, strict=True):
                outcome = expected(fault, "ollama", stream)
                cell = f"{fault}/{protocol}/{'stream' if stream else 'whole'}"
                assert outcome.error is not None
                if outcome.mid_stream:
                    assert response.status_code == 200, cell
                    assert ends_with_error_event(response), (cell, response.text)
                else:
                    assert response.status_code == outcome.error.http_status, (cell, response.text)
        # The faulty servers are gone, and with them every connection the pool kept to them.
        for _ in range(500):  # 5 s at most
            if served.fds() <= baseline:
                break
            await asyncio.sleep(0.01)
        assert served.fds() <= baseline, "file descriptors leaked in the served process"

    printed = "".join(served.output)
    assert "Traceback" not in printed and "Exception in ASGI application" not in printed
    for line in served.output:
        if line.startswith("{"):
            event = orjson.loads(line)
            assert event.get("level") not in ("error", "critical"), line
            assert "exception" not in event, line
    assert '"event":"llm_request_failed"' in printed.replace(" ", "")


@contextmanager
def faulty(fault: Fault) -> Iterator[str]:
    """The URL of a server with this fault, and only it, while the block runs."""
    if fault.server == "refused":
        yield f"http://127.0.0.1:{free_port()}"
    elif fault.server == "silent":
        with raw_server("silent") as raw:
            yield raw.url
    else:
        with running_fake_ollama() as fake:
            fake.configure(**fault.knobs)
            yield fake.url
