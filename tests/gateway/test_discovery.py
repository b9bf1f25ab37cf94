"""Discovery as clients use it: model lists with the default Ollama's models, /api/show from
the backend itself (`model` or legacy `name`), /api/ps under the gateway's names, and
/v1/models/{id}; driven with the official `ollama` and `openai` clients."""

from __future__ import annotations

import time

import ollama
import openai
import pytest

from tests.fakes.common import FakeServer
from tests.fakes.fixtures import running_fake_ollama
from tests.fakes.raw_tcp import raw_server
from tests.gateway.conftest import GatewayServer


def test_lists_add_the_default_ollamas_models(
    gateway: GatewayServer, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:
    fake_ollama.configure(models=["llama3.2:latest", "phi3:mini", "claimed:latest"])
    gateway.add("claimed", "openai", fake_openai.url)
    gateway.add("zeta", "ollama", fake_ollama.url)
    listed = [m.model for m in gateway.ollama().list().models]
    # Configs first (by name), then what the default Ollama serves under names no config takes.
    assert listed == ["claimed", "zeta", "llama3.2:latest", "phi3:mini"]
    models = gateway.openai().models.list().data
    assert [(m.id, m.owned_by) for m in models] == [
        ("claimed", "openai"),
        ("zeta", "ollama"),
        ("llama3.2:latest", "ollama"),
        ("phi3:mini", "ollama"),
    ]
    assert models[2].created == 1_735_689_600  # the default Ollama's modified_at
    # Cached (DISCOVERY_CACHE_TTL): a change on the default Ollama is not asked for again at
    # once. (Counting its /api/tags calls would not show it: the health probes call it too.)
    fake_ollama.configure(models=["other:latest"])
    assert [m.model for m in gateway.ollama().list().models][2:] == ["llama3.2:latest", "phi3:mini"]


def test_lists_and_ps_cover_every_default_ollama(
    start_gateway, fake_ollama: FakeServer, fake_openai: FakeServer
) -> None:  # type: ignore[no-untyped-def]
    """OLLAMA_URL with two servers: the lists are the configs, then each default server's
    models not already listed (in OLLAMA_URL order, no duplicates); /api/ps asks both."""
    fake_ollama.configure(
        models=["llama3.2:latest", "shared:latest", "claimed:latest"], loaded=["llama3.2:latest"]
    )
    with running_fake_ollama() as second:
        second.configure(
            models=["shared:latest", "qwen2.5:7b", "claimed:latest"], loaded=["qwen2.5:7b"]
        )
        gateway = start_gateway(ollama_url=f"{fake_ollama.url},{second.url}")
        gateway.add("claimed", "openai", fake_openai.url)
        expected = ["claimed", "llama3.2:latest", "shared:latest", "qwen2.5:7b"]
        assert [m.model for m in gateway.ollama().list().models] == expected
        models = gateway.openai().models.list().data
        assert [(m.id, m.owned_by) for m in models] == [
            ("claimed", "openai"),
            *((name, "ollama") for name in expected[1:]),
        ]
        assert gateway.openai().models.retrieve("qwen2.5:7b").owned_by == "ollama"
        assert gateway.ollama().show("qwen2.5:7b").details.family
        assert second.requests[-1].path == "/api/show"
        loaded = sorted(m.name or "" for m in gateway.ollama().ps().models)
        assert loaded == ["llama3.2:latest", "qwen2.5:7b"]


def test_a_hung_default_ollama_costs_one_short_timeout(start_gateway, fake_ollama) -> None:
    with raw_server("silent") as silent:
        gateway = start_gateway(
            ollama_url=silent.url, discovery_timeout=0.5, health_check_interval=3600
        )
        gateway.add("configured", "ollama", fake_ollama.url)
        client = gateway.ollama()
        started = time.monotonic()
        assert [m.model for m in client.list().models] == ["configured"]
        assert [m.model for m in client.list().models] == ["configured"]  # failure cached
        assert time.monotonic() - started < 5  # generous bound; one 0.5 s timeout is expected
        # One connection for the listing (its failure is cached), at most one more for the
        # first round of health probes (HEALTH_CHECK_INTERVAL is far beyond this test).
        assert 1 <= silent.accepted <= 2


def test_show_is_the_ollama_backends_own_answer(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    gateway.add("chat", "ollama", fake_ollama.url, backend_model="llama3.2")
    shown = gateway.ollama().show("chat")
    assert fake_ollama.bodies[-1] == {"model": "llama3.2"}
    assert shown.modelinfo is not None and shown.modelinfo["llama.context_length"] == 131072
    assert shown.capabilities == ["completion", "tools"]
    assert shown.template is not None and ".Suffix" in shown.template
    assert shown.details is not None and shown.details.family == "llama"
    # The legacy `name` key (litellm, Continue), and an unconfigured model on the default.
    legacy = gateway.http().post("/api/show", json={"name": "chat", "verbose": True})
    assert legacy.status_code == 200 and legacy.json()["model_info"]["llama.context_length"]
    assert fake_ollama.bodies[-1] == {"model": "llama3.2", "verbose": True}
    assert gateway.ollama().show("phi3:mini").capabilities == ["completion", "tools"]
    with pytest.raises(ollama.ResponseError) as caught:
        gateway.ollama().show("nowhere")
    assert caught.value.status_code == 404
    assert "model 'nowhere' not found" in caught.value.error
    missing = gateway.http().post("/api/show", json={})
    assert missing.status_code == 400 and missing.json()["error"].startswith("model:")


def test_show_of_an_openai_server_is_built_from_its_model_list(
    gateway: GatewayServer, fake_openai: FakeServer
) -> None:
    fake_openai.configure(models=["Qwen/Qwen2.5-7B"], max_model_len=32768)
    gateway.add("qwen", "openai", fake_openai.url, backend_model="Qwen/Qwen2.5-7B", max_tokens=512)
    gateway.add("plain", "openai", fake_openai.url, temperature_default=0.2)
    shown = gateway.ollama().show("qwen")
    assert shown.modelinfo is not None
    assert shown.modelinfo["general.architecture"] == "openai"
    assert shown.modelinfo["openai.context_length"] == 32768
    assert shown.modelinfo["llm_backends.backend_model"] == "Qwen/Qwen2.5-7B"
    assert shown.parameters is not None and "num_ctx" in shown.parameters
    assert shown.parameters.split("\n")[1].split() == ["num_predict", "512"]
    assert shown.details is not None and shown.details.format == "openai"
    # No backend_model: none is reported (not the model name), and the server lists no match.
    fake_openai.configure(models=["plain"])
    plain = gateway.ollama().show("plain")
    assert plain.modelinfo is not None
    assert "llm_backends.backend_model" not in plain.modelinfo
    assert plain.parameters is not None and plain.parameters.startswith("temperature")


def test_show_of_a_down_backend_is_a_502(gateway: GatewayServer, refused_url: str) -> None:
    gateway.add("down", "openai", refused_url)
    response = gateway.http().post("/api/show", json={"model": "down"})
    assert response.status_code == 502
    assert "could not be asked" in response.json()["error"]


@pytest.mark.mlx
def test_show_of_mlx_names_the_served_model(gateway: GatewayServer, mlx_server) -> None:
    gateway.add("tiny", "mlx", mlx_server.url)
    shown = gateway.ollama().show("tiny")
    assert shown.details is not None and shown.details.format == "mlx"
    assert shown.modelinfo is not None and "llm_backends.backend_model" not in shown.modelinfo
    assert shown.modelfile is not None and "FROM /" in shown.modelfile


def test_ps_lists_loaded_models_under_the_gateways_names(
    gateway: GatewayServer, fake_ollama: FakeServer
) -> None:
    fake_ollama.configure(loaded=["llama3.2:latest", "mine:latest", "other:7b"])
    gateway.add("mine", "openai", "http://127.0.0.1:9")  # takes the name "mine"
    with running_fake_ollama() as gpu:
        gpu.configure(loaded=["qwen2.5:7b", "unrouted:latest"])
        gateway.add("coder", "ollama", gpu.url, backend_model="qwen2.5:7b")
        gateway.add("alias", "ollama", fake_ollama.url, backend_model="llama3.2")
        loaded = gateway.ollama().ps().models
    names = sorted(m.name or "" for m in loaded)
    assert names == ["alias", "coder", "llama3.2:latest", "other:7b"]
    coder = next(m for m in loaded if m.name == "coder")
    assert coder.model == "coder" and coder.context_length == 131072 and coder.size_vram


def test_ps_skips_an_ollama_that_is_down(
    gateway: GatewayServer, fake_ollama: FakeServer, refused_url: str
) -> None:
    gateway.add("gone", "ollama", refused_url)
    assert [m.name for m in gateway.ollama().ps().models] == ["llama3.2:latest"]


def test_retrieve_a_model(gateway: GatewayServer, fake_ollama: FakeServer) -> None:
    gateway.add("org/model:q4", "openai", "http://127.0.0.1:9")
    client = gateway.openai()
    configured = client.models.retrieve("org/model:q4")
    assert (configured.id, configured.owned_by) == ("org/model:q4", "openai")
    assert client.models.retrieve("phi3:mini").owned_by == "ollama"
    with pytest.raises(openai.NotFoundError) as caught:
        client.models.retrieve("nowhere")
    assert caught.value.body["code"] == "model_not_found"  # type: ignore[index]
    assert "The model 'nowhere' does not exist" in caught.value.body["message"]  # type: ignore[index]
