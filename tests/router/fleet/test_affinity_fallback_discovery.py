"""Conversation affinity, fallback chains and discovery over several default Ollamas."""

from __future__ import annotations

from collections import Counter

import pytest

from llm_backends import BackendUnavailable, ModelNotFound
from llm_backends.router.types import ServerSpec
from tests.fakes.fleet import Trio
from tests.router.support import DictSource

MODEL = "llama3:8b"


def three(source: DictSource, trio: Trio, **extra) -> None:  # type: ignore[no-untyped-def]
    source.add(
        MODEL,
        "ollama",
        trio.urls[0],
        endpoints=tuple(ServerSpec(u) for u in trio.urls[1:]),
        **extra,
    )


async def test_a_multi_turn_conversation_stays_on_one_server(make_router, source, trio: Trio):  # type: ignore[no-untyped-def]
    three(source, trio)
    router = make_router(config_source=source)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    endpoints = set()
    for turn in range(8):
        result = await router.chat(model=MODEL, messages=messages)
        endpoints.add(result["endpoint"])
        messages += [
            {"role": "assistant", "content": result["response"]},
            {"role": "user", "content": f"and then? ({turn})"},
        ]
    assert len(endpoints) == 1
    # Without affinity the same conversation is spread by least-outstanding + round robin.
    plain = make_router({"conversation_affinity": False}, config_source=source)
    spread = {(await plain.chat(model=MODEL, messages=messages[:2]))["endpoint"] for _ in range(6)}
    assert len(spread) == 3


async def test_a_session_id_keeps_completions_together(make_router, source, trio: Trio):  # type: ignore[no-untyped-def]
    three(source, trio)
    router = make_router(config_source=source)
    endpoints = {
        (await router.generate(model=MODEL, prompt=f"different prompt {i}", session="s-1"))[
            "endpoint"
        ]
        for i in range(6)
    }
    assert len(endpoints) == 1


async def test_a_hundred_conversations_spread_over_the_servers(make_router, source, trio: Trio):  # type: ignore[no-untyped-def]
    three(source, trio)
    router = make_router(config_source=source)
    for i in range(100):
        messages = [{"role": "user", "content": f"conversation {i}"}]
        await router.chat(model=MODEL, messages=messages)
    counts = trio.counts()
    assert sum(counts) == 100 and min(counts) >= 15, counts


async def test_fallback_chain_answers_from_the_next_model(  # type: ignore[no-untyped-def]
    make_router, source, trio: Trio, refused_url: str
):
    source.add("big", "ollama", refused_url, endpoints=(ServerSpec(refused_url + "1"),))
    source.configs["big"] = source.configs["big"].__class__(
        **{**_fields(source.configs["big"]), "endpoints": (), "fallbacks": ("medium", "small")}
    )
    source.add("medium", "ollama", refused_url + "2", fallbacks=("big",))  # a cycle: skipped
    source.add("small", "ollama", trio.urls[1])
    router = make_router(config_source=source)
    result = await router.generate(model="big", prompt="hi")
    assert result["endpoint"] == trio.urls[1] and result["model"] == "big"
    assert trio.fakes[1].bodies[-1]["model"] == "small"
    chunks = router.stream_chunks("big", "hi")
    assert "".join([c.text async for c in chunks]) == "Hello from the fake server."
    assert chunks.endpoint == trio.urls[1]


async def test_fallbacks_are_not_tried_for_a_request_error(make_router, source, trio: Trio):  # type: ignore[no-untyped-def]
    trio.fakes[0].configure(status=400, error="bad request")
    source.add("a", "ollama", trio.urls[0], fallbacks=("b",))
    source.add("b", "ollama", trio.urls[1])
    router = make_router(config_source=source)
    with pytest.raises(Exception) as raised:
        await router.generate(model="a", prompt="x")
    assert getattr(raised.value, "http_status", None) == 400
    assert trio.fakes[1].bodies == []


async def test_a_model_without_config_is_found_on_the_second_default_server(  # type: ignore[no-untyped-def]
    make_router, source, trio: Trio
):
    for fake, models in zip(
        trio.fakes, [["llama3:8b"], ["qwen2.5:7b", "mistral:latest"], ["phi3:mini"]], strict=True
    ):
        fake.configure(models=models)
    router = make_router({"ollama_url": ",".join(trio.urls)}, config_source=source)
    result = await router.generate(model="qwen2.5:7b", prompt="hi")
    assert result["endpoint"] == trio.urls[1]
    assert trio.counts() == [0, 1, 0]
    assert (await router.generate(model="mistral", prompt="hi"))["endpoint"] == trio.urls[1]
    with pytest.raises(ModelNotFound) as raised:
        await router.generate(model="gpt-5", prompt="hi")
    message = str(raised.value)
    assert "'gpt-5'" in message and all(url in message for url in trio.urls)
    assert trio.counts() == [0, 2, 0]  # nobody was asked for gpt-5
    # Two default servers have it: least loaded first, both used.
    trio.fakes[2].configure(models=["qwen2.5:7b"])
    await router.fleet.monitor.next_round()
    hits = Counter(
        [(await router.generate(model="qwen2.5:7b", prompt=f"{i}"))["endpoint"] for i in range(6)]
    )
    assert set(hits) == {trio.urls[1], trio.urls[2]}


async def test_discovery_skips_a_dead_default_server(make_router, source, trio: Trio):  # type: ignore[no-untyped-def]
    for fake in trio.fakes:
        fake.configure(models=["qwen2.5:7b"])
    trio.proxy.cut()
    router = make_router({"ollama_url": ",".join(trio.urls)}, config_source=source)
    results = [await router.generate(model="qwen2.5:7b", prompt=f"{i}") for i in range(6)]
    assert trio.urls[0] not in {r["endpoint"] for r in results}
    for fake in trio.fakes[1:]:
        fake.configure(status=503)
    with pytest.raises(BackendUnavailable):
        await router.generate(model="qwen2.5:7b", prompt="x")


def _fields(config):  # type: ignore[no-untyped-def]
    return {name: getattr(config, name) for name in config.__dataclass_fields__}
