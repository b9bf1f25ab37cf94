"""Backend faults through the router library: `LLMRouter` over an explicit config source.

Each cell of faults x backend type x {whole answer, stream}: the caller gets the typed error
(or, for `auto`, the fallback Ollama's answer) within timeout + margin, a stream that fails
after its first chunk raises instead of ending as if complete, the failure is counted in
`pending_stats()`, nothing is logged as a traceback, and no descriptor, task or connection
outlives the fault.
"""

from __future__ import annotations

import re
from contextlib import aclosing
from typing import Any

import pytest

from llm_backends.router.core import LLMRouter
from llm_backends.router.types import Chunk
from tests.fakes.common import FakeServer
from tests.reliability.backend_faults.conftest import ROUTER_SETTINGS, FaultyServer
from tests.reliability.backend_faults.support import (
    BACKENDS,
    FAULTS,
    MESSAGES,
    REPLY,
    TIMEOUT,
    AppLogs,
    Fault,
    Probe,
    bounded,
    expected,
    port_of,
    stats_of,
    tasks_in_this_loop,
)
from tests.router.support import DictSource, RecordingSink, router_settings

WARM = "warm"
FALLBACK_WARM = "warm-fallback"


async def ask(router: LLMRouter, model: str, stream: bool, received: list[Chunk]) -> Any:
    """A chat answer: the Result, or (streaming) the handle after reading every chunk."""
    if not stream:
        return await router.chat_result(model, MESSAGES)
    handle = router.stream_chat_chunks(model, MESSAGES)
    async with aclosing(handle):
        async for chunk in handle:
            received.append(chunk)
    return handle


async def answered(router: LLMRouter, model: str, stream: bool) -> Any:
    """Ask, and check a complete answer arrived."""
    chunks: list[Chunk] = []
    async with bounded(f"healthy call to {model}"):
        result = await ask(router, model, stream, chunks)
    if stream:
        assert "".join(c.text for c in chunks) == REPLY and chunks[-1].done
    else:
        assert result.response == REPLY
    return result


@pytest.mark.parametrize("fault", FAULTS, ids=str)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("backend", BACKENDS)
async def test_router_library(
    backend: str,
    stream: bool,
    fault: Fault,
    faulty_server: Any,
    fake_ollama: FakeServer,
    fake_openai: FakeServer,
    app_logs: AppLogs,
) -> None:
    outcome = expected(fault, backend, stream)
    server: FaultyServer
    with faulty_server(fault, backend) as server:
        healthy = fake_ollama if backend == "ollama" else fake_openai
        source = DictSource()
        source.add("m", backend, server.url, timeout_seconds=TIMEOUT)
        source.add(WARM, backend, healthy.url, timeout_seconds=TIMEOUT)
        source.add(FALLBACK_WARM, "ollama", fake_ollama.url, timeout_seconds=TIMEOUT)
        router = LLMRouter(
            settings=router_settings(ollama_url=fake_ollama.url, **ROUTER_SETTINGS),
            config_source=source,
            stats_sink=RecordingSink(),
        )
        try:
            # Warm every pool the fault's path uses, then take the baseline.
            await answered(router, WARM, stream)
            if backend == "auto":  # and the fallback's
                await answered(router, FALLBACK_WARM, stream)
            ports = [server.port, port_of(healthy.url), port_of(fake_ollama.url)]
            probe = Probe(tasks_in_this_loop, lambda: router, ports)
            baseline = await probe.snapshot()

            server.break_()
            chunks: list[Chunk] = []
            async with bounded(f"{fault} on {backend}"):
                if outcome.fallback:
                    result = await ask(router, "m", stream, chunks)
                else:
                    with pytest.raises(outcome.error) as raised:  # type: ignore[arg-type]
                        await ask(router, "m", stream, chunks)
            assert server.was_hit()

            if outcome.fallback:
                assert (result.backend, result.fallback_from) == ("ollama", "mlx")
                text = "".join(c.text for c in chunks) if stream else result.response
                assert text == REPLY
                assert any(
                    e["event"] == "mlx_failed_falling_back_to_ollama" for e in app_logs.events
                )
            else:
                error = raised.value
                assert type(error) is outcome.error, repr(error)
                assert error.backend == outcome.backend
                assert re.search(outcome.reason, error.reason), error.reason
                assert error.retry_after == outcome.retry_after
                if outcome.mid_stream:
                    # Text arrived, then the failure: never a stream that looks complete.
                    assert chunks and chunks[0].text and not any(c.done for c in chunks)
                    assert type(error.__cause__) is fault.error, repr(error.__cause__)
                else:
                    assert chunks == []

            stats = stats_of(router, "m")
            assert stats.requests == 1
            assert stats.errors == (0 if outcome.fallback else 1)

            # The backend is healthy again: the router serves it at once (no poisoned pool).
            server.heal()
            await answered(router, WARM, stream)
            await probe.settled(baseline)
        finally:
            await router.close()
    assert not app_logs.tracebacks()
