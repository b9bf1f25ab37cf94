"""router.embed(): routed per model like generation, over real loopback sockets to fakes that
speak Ollama's /api/embed and vLLM's /v1/embeddings."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from llm_backends import BackendRequestError, BackendUnavailable
from llm_backends.router.embeddings import (
    EmbeddingRequest,
    Passthrough,
    decode_vector,
    encode_base64,
    split_input,
)
from tests.fakes.common import FakeServer
from tests.fakes.embeddings import normalize, ollama_vector, vector
from tests.router.support import MODEL, DictSource, RecordingSink


def close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(abs(x - y) < 1e-5 for x, y in zip(a, b, strict=True))


async def test_embed_on_ollama(make_router, source: DictSource, fake_ollama: FakeServer) -> None:
    source.add(MODEL, "ollama", fake_ollama.url, backend_model="nomic-embed-text")
    router = make_router(config_source=source)
    with capture_logs() as logs:
        result = await router.embed(MODEL, ["a b", "c"], dimensions=4, truncate=False)
    vectors = result.embeddings
    assert close(vectors[0], ollama_vector("a b", 8, 4))
    assert close(vectors[1], ollama_vector("c", 8, 4))
    assert (result.backend, result.model, result.prompt_tokens) == ("ollama", MODEL, 3)
    assert result.total_duration_ns == 14_000_000 and result.load_duration_ns == 1_000_000
    assert fake_ollama.requests[-1].path == "/api/embed"
    assert fake_ollama.bodies[-1] == {
        "model": "nomic-embed-text",
        "input": ["a b", "c"],
        "dimensions": 4,
        "truncate": False,
    }
    line = next(e for e in logs if e["event"] == "routing_llm_request")
    assert (line["operation"], line["backend"], line["inputs"]) == ("embed", "ollama", 2)


async def test_embed_on_openai_server(
    make_router, source: DictSource, fake_openai: FakeServer
) -> None:
    source.add(MODEL, "openai", fake_openai.url + "/v1")
    router = make_router(config_source=source)
    result = await router.embed(MODEL, "hello world")
    assert close(result.embeddings[0], normalize(vector("hello world", 8)))
    assert result.prompt_tokens == 2
    assert fake_openai.requests[-1].path == "/v1/embeddings"
    assert fake_openai.bodies[-1] == {
        "encoding_format": "float",
        "model": MODEL,
        "input": ["hello world"],
    }


async def test_token_arrays_go_to_openai_servers_only(
    make_router, source: DictSource, fake_openai: FakeServer, fake_ollama: FakeServer
) -> None:
    source.add(MODEL, "openai", fake_openai.url)
    source.add("on-ollama", "ollama", fake_ollama.url)
    router = make_router(config_source=source)
    result = await router.embed(MODEL, [[1, 2, 3], [4]])
    assert fake_openai.bodies[-1]["input"] == [[1, 2, 3], [4]]
    assert result.prompt_tokens == 4 and len(result.embeddings) == 2
    with pytest.raises(BackendRequestError) as caught:
        await router.embed("on-ollama", [1, 2, 3])
    assert "input: token arrays are not accepted by backend 'ollama'" in str(caught.value)
    assert fake_ollama.bodies == []


async def test_ollama_options_to_an_openai_server_are_refused(
    make_router, source: DictSource, fake_openai: FakeServer
) -> None:
    source.add(MODEL, "openai", fake_openai.url)
    router = make_router(config_source=source)
    with pytest.raises(BackendRequestError) as caught:
        await router.embed(MODEL, "x", options={"num_ctx": 512, "temperature": None})
    assert "options.num_ctx: model options are not accepted by backend 'openai'" in str(
        caught.value
    )
    # Null options are absent options: nothing to refuse.
    await router.embed(MODEL, "x", options={"temperature": None})


async def test_mlx_has_no_embeddings(make_router, source: DictSource, fake_openai) -> None:
    source.add(MODEL, "mlx", fake_openai.url)
    router = make_router(config_source=source)
    with pytest.raises(BackendRequestError) as caught:
        await router.embed(MODEL, "x")
    assert caught.value.http_status == 400
    assert "embeddings are not supported by backend 'mlx'" in str(caught.value)
    assert fake_openai.requests == []  # refused without a call
    assert router.breaker_states() == {}


async def test_auto_embeds_on_ollama(
    make_router, source: DictSource, fake_openai: FakeServer, fake_ollama: FakeServer
) -> None:
    source.add(MODEL, "auto", fake_openai.url, backend_model="/models/mlx-thing")
    router = make_router({"ollama_url": fake_ollama.url}, config_source=source)
    result = await router.embed(MODEL, "x")
    assert result.backend == "ollama" and result.fallback_from is None
    assert fake_openai.requests == []
    assert fake_ollama.bodies[-1]["model"] == MODEL  # Ollama knows it by its own name


async def test_failures_count_in_stats_and_breaker(
    make_router, source: DictSource, fake_ollama: FakeServer, refused_url: str
) -> None:
    sink = RecordingSink()
    source.add(MODEL, "ollama", refused_url)
    source.add("ok", "ollama", fake_ollama.url)
    router = make_router(config_source=source, stats_sink=sink)
    for _ in range(3):
        with pytest.raises(BackendUnavailable):
            await router.embed(MODEL, "x")
    assert router.breaker_states()[refused_url] == "open"
    await router.embed("ok", "x")
    stats = {s.model_name: (s.requests, s.errors) for s in router.pending_stats()}
    assert stats == {MODEL: (3, 3), "ok": (1, 0)}


async def test_a_model_without_config_gets_no_stats_row(
    make_router, source: DictSource, fake_ollama: FakeServer, refused_url: str
) -> None:
    """As for generation: the default Ollama's models (any name a client sends) are not
    counted; a configured model still is."""
    sink = RecordingSink()
    source.add(MODEL, "ollama", fake_ollama.url)
    router = make_router({"ollama_url": fake_ollama.url}, config_source=source, stats_sink=sink)
    result = await router.embed("unconfigured", "x")
    assert result.backend == "ollama"
    assert fake_ollama.bodies[-1]["model"] == "unconfigured"
    await router.embed(MODEL, "x")
    assert {s.model_name: (s.requests, s.errors) for s in router.pending_stats()} == {MODEL: (1, 0)}
    down = make_router({"ollama_url": refused_url}, config_source=source, stats_sink=sink)
    with pytest.raises(BackendUnavailable):
        await down.embed("unconfigured", "x")
    assert down.pending_stats() == []


async def test_passthrough_keeps_the_clients_fields_and_answer(
    make_router, source: DictSource, fake_ollama: FakeServer
) -> None:
    source.add(MODEL, "ollama", fake_ollama.url, backend_model="served")
    router = make_router(config_source=source)
    body = {"model": MODEL, "prompt": "hi", "options": {"seed": 1}, "unknown": [1]}
    request = EmbeddingRequest(("hi",), passthrough=Passthrough("ollama", body, legacy=True))
    result = await router.embed_request(MODEL, request)
    assert fake_ollama.requests[-1].path == "/api/embeddings"
    assert fake_ollama.bodies[-1] == {**body, "model": "served"}
    assert result.raw == {"embedding": vector("hi", 8)}
    assert result.embeddings == [vector("hi", 8)]


def test_inputs_and_base64() -> None:
    assert split_input("a") == (("a",), None)
    assert split_input(["a", "b"]) == (("a", "b"), None)
    assert split_input([1, 2]) == (None, ((1, 2),))
    assert split_input([[1], [2, 3]]) == (None, ((1,), (2, 3)))
    for bad in (None, 3, [1, "a"], [[]], [True], [[1, "x"]], b"x"):
        with pytest.raises(ValueError, match="input: must be"):
            split_input(bad)
    values = [0.5, -1.25, 3.0]
    assert encode_base64(values) == "AAAAPwAAoL8AAEBA"  # little-endian float32
    assert decode_vector(encode_base64(values)) == values
