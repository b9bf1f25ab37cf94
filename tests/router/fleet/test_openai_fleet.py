"""A fleet of OpenAI-compatible servers (vLLM-style fakes), whole answers and streams."""

from __future__ import annotations

from llm_backends.router.types import ServerSpec
from tests.fakes.common import FakeServer

MODEL = "qwen2.5:72b"


async def test_a_vllm_pair_retries_a_503_and_names_the_server(  # type: ignore[no-untyped-def]
    make_router, source, openai_pair: list[FakeServer]
):
    sick, well = openai_pair
    sick.reset()
    well.reset()
    sick.fail(503, "engine overloaded")
    source.add(
        MODEL,
        "openai",
        sick.url,
        backend_model="Qwen/Qwen2.5-72B-Instruct",
        endpoints=(ServerSpec(well.url),),
    )
    router = make_router({"conversation_affinity": False}, config_source=source)
    for i in range(3):
        result = await router.chat(model=MODEL, messages=[{"role": "user", "content": f"{i}"}])
        assert result["endpoint"] == well.url and result["backend"] == "openai"
        chunks = router.stream_chunks(MODEL, f"stream {i}")
        assert "".join([c.text async for c in chunks]) == "Hello from the fake server."
        assert chunks.endpoint == well.url
    assert {b["model"] for b in well.bodies} == {"Qwen/Qwen2.5-72B-Instruct"}
    # Three 503s opened the sick server's breaker: it is skipped from then on.
    assert len(sick.bodies) == 3
    sick.reset()
    well.reset()
