"""The fakes' embeddings and discovery speak the real protocols: the official `ollama` and
`openai` clients, pointed straight at them, parse every answer."""

from __future__ import annotations

import ollama
import openai
import pytest

from tests.fakes.common import FakeServer
from tests.fakes.embeddings import normalize, ollama_vector, vector
from tests.fakes.fake_ollama import OllamaBehaviour
from tests.fakes.fake_openai import OpenAIBehaviour


def close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(abs(x - y) < 1e-5 for x, y in zip(a, b, strict=True))


async def test_ollama_client_embed_embeddings_show_ps(
    fake_ollama: FakeServer[OllamaBehaviour],
) -> None:
    client = ollama.AsyncClient(host=fake_ollama.url)
    embedded = await client.embed(model="m", input=["a", "b c"], dimensions=3)
    assert close(embedded.embeddings[1], ollama_vector("b c", 8, 3))
    assert sum(x * x for x in embedded.embeddings[0]) == pytest.approx(1.0)
    assert (embedded.prompt_eval_count, embedded.load_duration) == (3, 1_000_000)
    assert (await client.embed(model="m", input="")).embeddings == []
    legacy = await client.embeddings(model="m", prompt="hi")
    assert list(legacy.embedding) == vector("hi", 8)

    shown = await client.show("llama3.2")
    assert shown.modelinfo is not None and shown.modelinfo["llama.context_length"] == 131072
    assert shown.capabilities == ["completion", "tools"]
    with pytest.raises(ollama.ResponseError) as caught:
        await client.show("nowhere")
    assert caught.value.status_code == 404 and caught.value.error == "model 'nowhere' not found"

    loaded = (await client.ps()).models
    assert [m.name for m in loaded] == ["llama3.2:latest"]
    assert loaded[0].expires_at is not None and loaded[0].context_length == 131072


async def test_openai_client_embeddings_and_models(
    fake_openai: FakeServer[OpenAIBehaviour],
) -> None:
    client = openai.AsyncOpenAI(base_url=f"{fake_openai.url}/v1", api_key="x", max_retries=0)
    try:
        default = await client.embeddings.create(model="phi3:mini", input=["x", "y"])
        assert fake_openai.bodies[-1]["encoding_format"] == "base64"
        assert close(default.data[1].embedding, normalize(vector("y", 8)))
        floats = await client.embeddings.create(
            model="phi3:mini", input=[[1, 2]], encoding_format="float", dimensions=4
        )
        assert close(floats.data[0].embedding, normalize(normalize(vector([1, 2], 8))[:4]))
        assert floats.usage.prompt_tokens == 2
        models = (await client.models.list()).data
        assert models[0].model_extra == {
            "root": "llama3.2:latest",
            "parent": None,
            "max_model_len": 4096,
            "permission": [],
        }
        with pytest.raises(openai.BadRequestError):
            await client.embeddings.create(model="phi3:mini", input=[["no"]])  # type: ignore[list-item]
    finally:
        await client.close()
