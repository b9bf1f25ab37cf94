"""The seed guide's scenarios end to end: the real Admin API (SQLite and PostgreSQL) holds the
configs, and a library-mode LLMRouter looks them up over HTTP, as a service would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from structlog.testing import capture_logs

from llm_backends import LLMRouter
from llm_backends.settings import Settings
from tests.conftest import LiveServer
from tests.fakes.common import FakeServer
from tests.fakes.mlx_server import MLXServer
from tests.fakes.server import free_port
from tests.router.support import FakeClock

MakeRouter = Callable[..., LLMRouter]


@pytest.fixture
async def make_router(
    live_server: LiveServer, fake_ollama: FakeServer
) -> AsyncIterator[MakeRouter]:
    routers: list[LLMRouter] = []

    def make(follow: bool = True, **kwargs: object) -> LLMRouter:
        settings = Settings(
            llm_router_follow_changes=follow,
            _env_file=None,  # type: ignore[call-arg]
            admin_api_url=live_server.url,
            ollama_url=fake_ollama.url,
            admin_api_token=live_server.token,
            llm_router_connect_timeout=1.0,
            metrics_report_interval=3600,
        )
        router = LLMRouter(settings=settings, **kwargs)  # type: ignore[arg-type]
        routers.append(router)
        return router

    yield make
    for router in routers:
        await router.close()


def configure(server: LiveServer, **fields: object) -> dict:
    body = {"enabled": True, "max_tokens": 2048, "temperature_default": 0.7, "timeout_seconds": 60}
    response = server.admin.post("/api/llm-backends", json={**body, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


async def test_scenario_1_ollama(
    live_server: LiveServer, fake_ollama: FakeServer, make_router: MakeRouter
) -> None:
    configure(
        live_server, model_name="phi3:mini", backend_type="ollama", endpoint_url=fake_ollama.url
    )
    fake_ollama.configure(reply="2 + 2 equals 4.")
    with capture_logs() as logs:
        result = await make_router().generate(
            model="phi3:mini", prompt="What is 2+2?", temperature=0.7
        )
    assert result["response"] == "2 + 2 equals 4." and result["backend"] == "ollama"
    sent = fake_ollama.bodies[-1]
    assert sent["model"] == "phi3:mini" and sent["prompt"] == "What is 2+2?"
    assert sent["options"]["temperature"] == 0.7 and sent["options"]["num_predict"] == 2048
    routing = [e for e in logs if e["event"] == "routing_llm_request"]
    assert len(routing) == 1
    assert routing[0]["backend_type"] == "ollama" and routing[0]["backend"] == "ollama"
    assert routing[0]["endpoint"] == fake_ollama.url


async def test_scenario_2_mlx_on_the_real_server(
    live_server: LiveServer, mlx_server: MLXServer, fake_ollama: FakeServer, make_router: MakeRouter
) -> None:
    configure(live_server, model_name="phi3:mini", backend_type="mlx", endpoint_url=mlx_server.url,
              max_tokens=8)  # fmt: skip
    prompt = "Explain quantum computing in one sentence."
    result = await make_router().generate(model="phi3:mini", prompt=prompt, temperature=0.7)
    assert result["backend"] == "mlx" and result["fallback_from"] is None
    assert result["prompt_tokens"] == len(prompt.encode()) and result["completion_tokens"] == 8
    assert len(result["response"]) == 8 and result["finish_reason"] == "length"
    assert fake_ollama.requests == []


async def test_scenario_3_auto_prefers_mlx_then_falls_back_to_ollama(
    live_server: LiveServer, mlx_server: MLXServer, fake_ollama: FakeServer, make_router: MakeRouter
) -> None:
    created = configure(live_server, model_name="llama3.1:8b", backend_type="auto",
                        endpoint_url=mlx_server.url, max_tokens=4)  # fmt: skip
    lookup = live_server.client().get("/api/llm-backends/model/llama3.1:8b").json()
    assert lookup["backend_type"] == "auto"
    router = make_router()
    both_up = await router.generate(model="llama3.1:8b", prompt="hi", temperature=0)
    assert both_up["backend"] == "mlx" and fake_ollama.requests == []

    # "Stop MLX": point the config at a port where nothing listens.
    live_server.admin.put(f"/api/llm-backends/{created['id']}", json={"endpoint_url": dead_url()})
    router.invalidate("llama3.1:8b")
    with capture_logs() as logs:
        mlx_down = await router.generate(model="llama3.1:8b", prompt="hi", temperature=0)
    assert mlx_down["backend"] == "ollama" and mlx_down["fallback_from"] == "mlx"
    assert fake_ollama.bodies[-1]["model"] == "llama3.1:8b"
    assert any(e["event"] == "mlx_failed_falling_back_to_ollama" for e in logs)


async def test_scenario_4_each_model_on_its_own_backend(
    live_server: LiveServer, mlx_server: MLXServer, fake_ollama: FakeServer, make_router: MakeRouter
) -> None:
    configure(live_server, model_name="phi3:mini", backend_type="mlx", endpoint_url=mlx_server.url,
              temperature_default=0.3, timeout_seconds=30, max_tokens=4)  # fmt: skip
    configure(
        live_server, model_name="llama3.1:8b", backend_type="ollama", endpoint_url=fake_ollama.url
    )
    configure(live_server, model_name="codellama:7b", backend_type="auto", endpoint_url=dead_url(),
              temperature_default=0.2)  # fmt: skip
    router = make_router()
    answered = {
        model: (await router.generate(model=model, prompt="x"))["backend"]
        for model in ("phi3:mini", "llama3.1:8b", "codellama:7b")
    }
    assert answered == {"phi3:mini": "mlx", "llama3.1:8b": "ollama", "codellama:7b": "ollama"}
    temperatures = {b["model"]: b["options"]["temperature"] for b in fake_ollama.bodies}
    assert temperatures == {"llama3.1:8b": 0.7, "codellama:7b": 0.2}


async def test_switching_backend_takes_effect_when_the_cache_expires(
    live_server: LiveServer, mlx_server: MLXServer, fake_ollama: FakeServer, make_router: MakeRouter
) -> None:
    """Without the change feed (LLM_ROUTER_FOLLOW_CHANGES=false) the TTL is what applies it."""
    created = configure(live_server, model_name="phi3:mini", backend_type="ollama",
                        endpoint_url=fake_ollama.url, max_tokens=4)  # fmt: skip
    clock = FakeClock()
    router = make_router(follow=False, clock=clock)
    assert (await router.generate(model="phi3:mini", prompt="x"))["backend"] == "ollama"
    live_server.admin.put(
        f"/api/llm-backends/{created['id']}",
        json={"backend_type": "mlx", "endpoint_url": mlx_server.url},
    )
    clock.advance(30)  # within the 60 s TTL: the cached config still answers
    assert (await router.generate(model="phi3:mini", prompt="x"))["backend"] == "ollama"
    clock.advance(31)  # past it: served once more while one lookup refreshes it behind
    assert (await router.generate(model="phi3:mini", prompt="x"))["backend"] == "ollama"
    await asyncio.gather(*router._cache._tasks)
    assert (await router.generate(model="phi3:mini", prompt="x"))["backend"] == "mlx"


async def test_switching_backend_takes_effect_at_once_through_the_change_feed(
    live_server: LiveServer, mlx_server: MLXServer, fake_ollama: FakeServer, make_router: MakeRouter
) -> None:
    """Following the change feed (the default), no TTL has to run out (the clock stands still)."""
    created = configure(live_server, model_name="phi3:mini", backend_type="ollama",
                        endpoint_url=fake_ollama.url, max_tokens=4)  # fmt: skip
    router = make_router(clock=FakeClock())
    assert (await router.generate(model="phi3:mini", prompt="x"))["backend"] == "ollama"
    live_server.admin.put(
        f"/api/llm-backends/{created['id']}",
        json={"backend_type": "mlx", "endpoint_url": mlx_server.url},
    )
    for _ in range(500):  # up to ~5 s; in practice a few ms
        if (await router.resolve("phi3:mini")).backend_type == "mlx":
            break
        await asyncio.sleep(0.01)
    assert (await router.generate(model="phi3:mini", prompt="x"))["backend"] == "mlx"


@pytest.mark.parametrize("how", ["toggle", "put-disabled", "delete"])
async def test_disabled_or_deleted_config_falls_back_to_default_ollama(
    live_server: LiveServer, fake_ollama: FakeServer, fake_openai: FakeServer,
    make_router: MakeRouter, how: str,
) -> None:  # fmt: skip
    created = configure(live_server, model_name="phi3:mini", backend_type="openai",
                        endpoint_url=fake_openai.url, temperature_default=0.1)  # fmt: skip
    router = make_router()
    assert (await router.generate(model="phi3:mini", prompt="x"))["backend"] == "openai"
    backend_id = created["id"]
    if how == "toggle":
        live_server.admin.post(f"/api/llm-backends/{backend_id}/toggle")
    elif how == "put-disabled":
        live_server.admin.put(f"/api/llm-backends/{backend_id}", json={"enabled": False})
    else:
        live_server.admin.delete(f"/api/llm-backends/{backend_id}")
    router.invalidate()
    with capture_logs() as logs:
        result = await router.generate(model="phi3:mini", prompt="x")
    assert result["backend"] == "ollama" and result["endpoint"] == fake_ollama.url
    assert fake_ollama.bodies[-1]["options"]["temperature"] == 0.7  # the default config's
    assert any(e["event"] == "no_backend_config_found" for e in logs)


async def test_router_stats_reach_the_tracked_columns(
    live_server: LiveServer, fake_ollama: FakeServer, make_router: MakeRouter
) -> None:
    configure(
        live_server, model_name="phi3:mini", backend_type="ollama", endpoint_url=fake_ollama.url
    )
    router = make_router()
    for _ in range(3):
        await router.generate(model="phi3:mini", prompt="x")
    fake_ollama.fail(500)
    with pytest.raises(Exception, match="phi3:mini"):
        await router.generate(model="phi3:mini", prompt="x")
    row = live_server.client().get("/api/llm-backends/model/phi3:mini").json()
    assert row["total_requests"] == 0  # batched: nothing written per request
    assert await router.flush_stats()
    row = live_server.client().get("/api/llm-backends/model/phi3:mini").json()
    assert (row["total_requests"], row["total_errors"]) == (4, 1)
    assert row["avg_latency_ms"] > 0 and row["avg_tokens_per_sec"] > 0
