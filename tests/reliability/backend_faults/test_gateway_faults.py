"""Backend faults through the gateway, in both client protocols, over real HTTP.

Each cell of client protocol x faults x backend type x {whole answer, stream}: the client
gets its protocol's error with the right status (or, for `auto`, the fallback Ollama's
answer) within timeout + margin; a stream that fails after its first byte ends with an
explicit error event, never a cut that looks complete; `/metrics` counts the failure; the app
logs no traceback; and no descriptor, server task or connection outlives the fault.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from llm_backends.gateway.errors import error_code
from llm_backends.router.errors import LLMRouterError
from llm_backends.router.stats import ModelStats
from tests.fakes.common import FakeServer
from tests.reliability.backend_faults.conftest import (
    WARM,
    FaultGateway,
    FaultyServer,
    GatewayClient,
)
from tests.reliability.backend_faults.support import (
    BACKENDS,
    FAULTS,
    MESSAGES,
    REPLY,
    AppLogs,
    Fault,
    Outcome,
    Probe,
    bounded,
    expected,
    port_of,
    stats_of,
    tasks_in,
)

JSON = "application/json"


async def call(
    client: httpx.AsyncClient, protocol: str, model: str, stream: bool
) -> httpx.Response:
    """One generation request, its body read to the end."""
    if protocol == "openai":
        body: dict[str, Any] = {"model": model, "messages": MESSAGES, "stream": stream}
        return await client.post("/v1/chat/completions", json=body)
    return await client.post(
        "/api/generate", json={"model": model, "prompt": "hi", "stream": stream}
    )


def sse_data(text: str) -> list[str]:
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


def answer_text(protocol: str, stream: bool, response: httpx.Response) -> str:
    """The text of a complete answer; fails if the answer is not complete."""
    assert response.status_code == 200, response.text
    if protocol == "openai":
        if not stream:
            return response.json()["choices"][0]["message"]["content"]
        events = sse_data(response.text)
        assert events[-1] == "[DONE]", events
        chunks = [orjson.loads(event) for event in events[:-1]]
        return "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
        )
    if not stream:
        data = response.json()
        assert data["done"] is True
        return data["response"]
    lines = [orjson.loads(line) for line in response.text.splitlines()]
    assert lines[-1]["done"] is True, lines[-1]
    return "".join(line["response"] for line in lines)


async def answered(client: httpx.AsyncClient, protocol: str, model: str, stream: bool) -> None:
    async with bounded(f"healthy call to {model}"):
        response = await call(client, protocol, model, stream)
    assert answer_text(protocol, stream, response) == REPLY


def code_of(error: type[LLMRouterError]) -> str:
    """The stable `code` the gateway gives a router error class (e.g. "backend_timeout")."""
    return error_code(error("", model="", backend="", endpoint=""))


def check_error(protocol: str, outcome: Outcome, response: httpx.Response) -> None:
    """An error answered before any byte: its status, and the protocol's error body."""
    assert outcome.error is not None
    assert response.status_code == outcome.error.http_status, response.text
    assert response.headers["content-type"] == JSON
    assert response.headers["x-llm-backend"] == outcome.backend
    assert response.headers.get("retry-after") == outcome.retry_after
    body = response.json()
    assert set(body) == {"error"}, body
    if protocol == "openai":
        error = body["error"]
        assert set(error) == {"message", "type", "param", "code"}, body
        assert error["code"] == code_of(outcome.error)
        message = error["message"]
    else:
        message = body["error"]
        assert isinstance(message, str)
    assert re.search(outcome.reason, message), message


def check_interrupted(protocol: str, outcome: Outcome, response: httpx.Response) -> None:
    """A stream that failed after its first byte: text, then an error event, and no end."""
    assert response.status_code == 200
    assert response.headers["x-llm-backend"] == outcome.backend
    if protocol == "openai":
        events = sse_data(response.text)
        assert "[DONE]" not in events
        *chunks, last = [orjson.loads(event) for event in events]
        assert chunks and chunks[0]["choices"][0]["delta"]["content"]
        assert not any(c["choices"] and c["choices"][0]["finish_reason"] for c in chunks)
        assert set(last) == {"error"} and set(last["error"]) == {"message", "type", "param", "code"}
        assert last["error"]["code"] == "stream_interrupted"
        message = last["error"]["message"]
    else:
        *lines, last = [orjson.loads(line) for line in response.text.splitlines()]
        assert lines and lines[0]["response"]
        assert not any(line.get("done") for line in lines)
        assert set(last) == {"error"} and isinstance(last["error"], str)
        message = last["error"]
    assert re.search(outcome.reason, message), message


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples_of(text: str, model: str) -> Samples:
    """The samples of one model (the exposition holds every model of the package's tests)."""
    mine = "\n".join(line for line in text.splitlines() if f'model="{model}"' in line)
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(mine + "\n")
        for sample in family.samples
    }


def check_metrics(
    before_text: str, after_text: str, protocol: str, model: str, outcome: Outcome
) -> None:
    before, after = samples_of(before_text, model), samples_of(after_text, model)

    def moved(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        return after.get(key, 0.0) - before.get(key, 0.0)

    requests = "llm_gateway_requests_total"
    if outcome.fallback:
        labels = {"model": model, "backend": "ollama", "status": "200", "protocol": protocol}
        assert moved(requests, **labels) == 1
        fallback = {"model": model, "from_backend": "mlx", "to_backend": "ollama"}
        assert moved("llm_gateway_fallbacks_total", **fallback) == 1
        return
    assert outcome.error is not None
    status = str(outcome.error.http_status)
    labels = {"model": model, "backend": outcome.backend, "status": status, "protocol": protocol}
    assert moved(requests, **labels) == 1, after
    code = code_of(outcome.error)
    upstream = {"model": model, "backend": outcome.backend, "error": code}
    assert moved("llm_gateway_upstream_errors_total", **upstream) == 1, after


async def check_stats(
    gateway: FaultGateway, client: GatewayClient, config: dict[str, Any], outcome: Outcome
) -> None:
    """The router counted the request (and its failure), and the counts reach the store."""
    model = config["model_name"]

    async def pending() -> ModelStats:
        return stats_of(gateway.router, model)

    # A stream's request is counted when its router stream ends, just after the last byte
    # went out: wait for it (bounded).
    for _ in range(500):
        stats = await gateway.in_loop(pending())
        if stats.requests:
            break
        await asyncio.sleep(0.01)
    errors = 0 if outcome.fallback else 1
    assert (stats.requests, stats.errors) == (1, errors)
    assert await gateway.in_loop(gateway.router.flush_stats())
    stored = await client.config(config["id"])
    assert (stored["total_requests"], stored["total_errors"]) == (1, errors)


@pytest.mark.parametrize("fault", FAULTS, ids=str)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("protocol", ["openai", "ollama"], ids=["openai_api", "ollama_api"])
async def test_gateway(
    protocol: str,
    backend: str,
    stream: bool,
    fault: Fault,
    fault_gateway: FaultGateway,
    faulty_server: Any,
    fake_ollama: FakeServer,
    fake_openai: FakeServer,
    app_logs: AppLogs,
) -> None:
    gateway = fault_gateway
    outcome = expected(fault, backend, stream)
    model = f"fault-{protocol}-{backend}-{'stream' if stream else 'whole'}-{fault}"
    server: FaultyServer
    with faulty_server(fault, backend) as server:
        async with gateway.client() as client:
            http = client.http
            config = await client.add(model, backend, server.url)
            # Warm every pool the fault's path uses, then take the baseline.
            await answered(http, protocol, WARM[backend], stream)
            if backend == "auto":  # and the fallback's
                await answered(http, protocol, WARM["ollama"], stream)
            before = await client.metrics()
            healthy = fake_ollama if backend == "ollama" else fake_openai
            ports = [server.port, port_of(healthy.url), port_of(fake_ollama.url)]
            probe = Probe(tasks_in(gateway.loop), lambda: gateway.router, ports)
            baseline = await probe.snapshot()

            server.break_()
            async with bounded(f"{fault} on {backend}"):
                response = await call(http, protocol, model, stream)
            assert server.was_hit()

            if outcome.fallback:
                assert answer_text(protocol, stream, response) == REPLY
                assert response.headers["x-llm-backend"] == "ollama"
                assert response.headers["x-llm-fallback-from"] == "mlx"
            elif outcome.mid_stream:
                check_interrupted(protocol, outcome, response)
            else:
                check_error(protocol, outcome, response)
            check_metrics(before, await client.metrics(), protocol, model, outcome)
            await check_stats(gateway, client, config, outcome)

            # The backend is healthy again: the gateway serves it at once (no poisoned pool).
            server.heal()
            await answered(http, protocol, WARM[backend], stream)
            await probe.settled(baseline)
        # The client has gone: the gateway holds nothing more for it either.
        probe.ports.append(port_of(gateway.url))
        await probe.settled(baseline)
    assert not app_logs.tracebacks()
