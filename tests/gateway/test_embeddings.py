"""Embeddings through the gateway with the official clients: /v1/embeddings, /api/embed and
/api/embeddings, to Ollama and vLLM-like fakes (translated, or forwarded untouched when the
protocols match) and to the real mlx_lm.server (a 400 naming it)."""

from __future__ import annotations

import ollama
import openai
import pytest

from tests.fakes.common import FakeServer
from tests.fakes.embeddings import normalize, ollama_vector, vector
from tests.gateway.conftest import GatewayServer

MODEL = "embedder"


def close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(abs(x - y) < 1e-5 for x, y in zip(a, b, strict=True))


def test_openai_client_default_base64_translated_to_ollama(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url, backend_model="nomic-embed-text")
    answer = gateway.openai().embeddings.create(model=MODEL, input=["one two", "three"])
    # The client asked for base64 (its default) and decoded it back to floats.
    assert fake_ollama.bodies[-1] == {"model": "nomic-embed-text", "input": ["one two", "three"]}
    assert close(answer.data[0].embedding, ollama_vector("one two", 8))
    assert close(answer.data[1].embedding, ollama_vector("three", 8))
    assert [d.index for d in answer.data] == [0, 1]
    assert answer.model == MODEL and answer.usage.prompt_tokens == 3


def test_openai_client_float_and_dimensions_translated_to_ollama(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    raw = gateway.http().post(
        "/v1/embeddings",
        json={"model": MODEL, "input": "x", "encoding_format": "float", "dimensions": 3},
    )
    assert raw.status_code == 200, raw.text
    assert raw.headers["x-llm-backend"] == "ollama"
    assert fake_ollama.bodies[-1] == {"model": MODEL, "input": ["x"], "dimensions": 3}
    assert close(raw.json()["data"][0]["embedding"], ollama_vector("x", 8, 3))


def test_openai_client_forwarded_untouched_to_an_openai_server(
    gateway: GatewayServer, fake_openai: FakeServer
) -> None:
    gateway.add(MODEL, "openai", fake_openai.url, backend_model="BAAI/bge-m3")
    client = gateway.openai()
    answer = client.embeddings.create(model=MODEL, input="hello", user="u1", dimensions=4)
    assert fake_openai.bodies[-1] == {
        "model": "BAAI/bge-m3",
        "input": "hello",
        "user": "u1",
        "dimensions": 4,
        "encoding_format": "base64",
    }
    assert close(answer.data[0].embedding, normalize(normalize(vector("hello", 8))[:4]))
    assert answer.model == MODEL
    floats = client.embeddings.create(model=MODEL, input=[[1, 2], [3]], encoding_format="float")
    assert fake_openai.bodies[-1]["input"] == [[1, 2], [3]]
    assert close(floats.data[1].embedding, normalize(vector([3], 8)))


def test_token_arrays_to_ollama_are_refused(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.openai().embeddings.create(model=MODEL, input=[1, 2, 3])
    message = caught.value.body["message"]  # type: ignore[index]
    assert "input: token arrays are not accepted by backend 'ollama'" in message
    assert fake_ollama.bodies == []


def test_ollama_client_forwarded_untouched_to_ollama(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url, backend_model="served")
    client = gateway.ollama()
    answer = client.embed(
        model=MODEL, input=["a", "b"], truncate=True, dimensions=2, keep_alive="1m"
    )
    assert fake_ollama.bodies[-1] == {
        "model": "served",
        "input": ["a", "b"],
        "truncate": True,
        "dimensions": 2,
        "keep_alive": "1m",
    }
    assert close(answer.embeddings[1], ollama_vector("b", 8, 2))
    assert answer.model == MODEL
    assert (answer.total_duration, answer.load_duration, answer.prompt_eval_count) == (
        14_000_000,
        1_000_000,
        2,
    )
    legacy = client.embeddings(model=MODEL, prompt="hi", options={"num_ctx": 64})
    assert fake_ollama.requests[-1].path == "/api/embeddings"
    assert fake_ollama.bodies[-1] == {"model": "served", "prompt": "hi", "options": {"num_ctx": 64}}
    assert list(legacy.embedding) == vector("hi", 8)


def test_ollama_client_translated_to_an_openai_server(
    gateway: GatewayServer, fake_openai: FakeServer
) -> None:
    gateway.add(MODEL, "openai", fake_openai.url)
    client = gateway.ollama()
    answer = client.embed(model=MODEL, input="hello world", dimensions=4, keep_alive=0)
    assert fake_openai.bodies[-1] == {
        "encoding_format": "float",
        "model": MODEL,
        "input": ["hello world"],
        "dimensions": 4,
    }
    assert close(answer.embeddings[0], normalize(normalize(vector("hello world", 8))[:4]))
    assert answer.prompt_eval_count == 2
    assert answer.total_duration is not None and answer.total_duration > 0
    assert answer.load_duration == 0
    legacy = client.embeddings(model=MODEL, prompt="hi")
    assert fake_openai.bodies[-1]["input"] == ["hi"]
    assert close(list(legacy.embedding), normalize(vector("hi", 8)))
    with pytest.raises(ollama.ResponseError) as caught:
        client.embed(model=MODEL, input="x", options={"num_ctx": 64})
    assert caught.value.status_code == 400
    assert "options.num_ctx: model options are not accepted by backend 'openai'" in str(
        caught.value.error
    )


def test_empty_ollama_input_only_loads(gateway: GatewayServer, fake_openai: FakeServer) -> None:
    gateway.add(MODEL, "openai", fake_openai.url)
    answer = gateway.ollama().embed(model=MODEL, input=[])
    assert answer.embeddings == [] and fake_openai.bodies == []


def test_bad_bodies_name_the_field(gateway: GatewayServer) -> None:
    http = gateway.http()
    for body, field in (
        ({"model": MODEL, "input": []}, "input"),
        ({"model": MODEL, "input": "x", "encoding_format": "hex"}, "encoding_format"),
        ({"model": MODEL, "input": "x", "dimensions": 0}, "dimensions"),
        ({"input": "x"}, "model"),
    ):
        response = http.post("/v1/embeddings", json=body)
        assert response.status_code == 400, body
        assert response.json()["error"]["param"] == field
        assert response.json()["error"]["message"].startswith(f"{field}:")
    response = http.post("/api/embed", json={"model": MODEL, "input": [1]})
    assert response.status_code == 400 and response.json()["error"].startswith("input")


def test_embeddings_count_in_metrics(
    gateway: GatewayServer, fake_ollama: FakeServer, refused_url: str
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    gateway.add("down", "ollama", refused_url)
    client = gateway.ollama()
    client.embed(model=MODEL, input="x")
    with pytest.raises(ollama.ResponseError):
        client.embed(model="down", input="x")
    text = gateway.metrics()
    assert (
        'llm_gateway_requests_total{backend="ollama",model="embedder",protocol="ollama",'
        'status="200"} 1.0' in text
    )
    assert (
        'llm_gateway_requests_total{backend="ollama",model="down",protocol="ollama",'
        'status="502"} 1.0' in text
    )


@pytest.mark.mlx
def test_mlx_has_no_embeddings_in_either_protocol(gateway: GatewayServer, mlx_server) -> None:
    gateway.add(MODEL, "mlx", mlx_server.url)
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.openai().embeddings.create(model=MODEL, input="x")
    assert "embeddings are not supported by backend 'mlx'" in str(caught.value)
    with pytest.raises(ollama.ResponseError) as refused:
        gateway.ollama().embed(model=MODEL, input="x")
    assert refused.value.status_code == 400
    assert "embeddings are not supported by backend 'mlx'" in str(refused.value.error)


@pytest.mark.mlx
def test_auto_embeds_on_ollama_not_mlx(
    gateway: GatewayServer, mlx_server, fake_ollama: FakeServer
) -> None:
    gateway.add(MODEL, "auto", mlx_server.url)
    answer = gateway.ollama().embed(model=MODEL, input="x")
    assert close(answer.embeddings[0], ollama_vector("x", 8))
    assert fake_ollama.bodies[-1]["model"] == MODEL


def test_fields_without_an_equivalent_are_refused_when_translating(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    gateway.add("on-vllm", "openai", fake_openai.url)
    http = gateway.http()
    body = {"model": MODEL, "input": "x", "truncate_prompt_tokens": 8}
    response = http.post("/v1/embeddings", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith(
        "truncate_prompt_tokens: unknown openai fields are not accepted by backend 'ollama'"
    )
    # The same field reaches a backend of the client's own protocol untouched.
    assert http.post("/v1/embeddings", json={**body, "model": "on-vllm"}).status_code == 200
    assert fake_openai.bodies[-1]["truncate_prompt_tokens"] == 8
    assert fake_ollama.bodies == []
