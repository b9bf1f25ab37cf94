"""LangChain's OllamaEmbeddings and OpenAIEmbeddings (what RAG pipelines run) against the
gateway, to an Ollama and to a vLLM-like backend: each client parses the vectors the backend
computed, whichever protocol it speaks."""

from __future__ import annotations

from langchain_ollama import OllamaEmbeddings
from langchain_openai import OpenAIEmbeddings

from tests.fakes.common import FakeServer
from tests.fakes.embeddings import normalize, ollama_vector, vector
from tests.gateway.conftest import GatewayServer

MODEL = "rag-embedder"
TEXTS = ["first document", "second"]


def close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(abs(x - y) < 1e-5 for x, y in zip(a, b, strict=True))


def openai_embeddings(gateway: GatewayServer) -> OpenAIEmbeddings:
    # check_embedding_ctx_length would fetch tiktoken's encodings from the internet.
    return OpenAIEmbeddings(
        model=MODEL,
        base_url=f"{gateway.url}/v1",
        api_key="unused",  # type: ignore[arg-type]
        check_embedding_ctx_length=False,
        max_retries=0,
    )


def test_ollama_embeddings_to_ollama_and_to_an_openai_server(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url, backend_model="nomic-embed-text")
    client = OllamaEmbeddings(model=MODEL, base_url=gateway.url)
    vectors = client.embed_documents(TEXTS)
    assert [close(v, ollama_vector(t, 8)) for v, t in zip(vectors, TEXTS, strict=True)] == [
        True,
        True,
    ]
    assert fake_ollama.bodies[-1]["model"] == "nomic-embed-text"
    assert fake_ollama.bodies[-1]["input"] == TEXTS
    assert close(client.embed_query("q"), ollama_vector("q", 8))

    gateway.admin.put(
        f"/api/llm-backends/{gateway.admin.get(f'/api/llm-backends/model/{MODEL}').json()['id']}",
        json={"backend_type": "openai", "endpoint_url": fake_openai.url, "backend_model": None},
    )
    vectors = client.embed_documents(TEXTS)
    # LangChain's many null options are absent options: nothing to refuse.
    assert fake_openai.bodies[-1] == {"encoding_format": "float", "model": MODEL, "input": TEXTS}
    assert close(vectors[1], normalize(vector("second", 8)))


def test_openai_embeddings_to_ollama_and_to_an_openai_server(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    client = openai_embeddings(gateway)
    vectors = client.embed_documents(TEXTS)
    assert close(vectors[0], ollama_vector(TEXTS[0], 8))
    assert fake_ollama.bodies[-1] == {"model": MODEL, "input": TEXTS}

    gateway.add("on-vllm", "openai", fake_openai.url)
    client.model = "on-vllm"
    vectors = client.embed_documents(TEXTS)
    sent = fake_openai.bodies[-1]
    assert sent["model"] == "on-vllm" and sent["input"] == TEXTS
    assert close(vectors[1], normalize(vector("second", 8)))
