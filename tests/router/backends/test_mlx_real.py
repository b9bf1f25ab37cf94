"""The mlx and openai backends against the REAL mlx_lm.server (tiny random model, CPU).

Facts of the tiny model (tests/fakes/make_tiny_mlx_model.py): one token per prompt byte and
no BOS, so prompt_tokens == len(prompt.encode()); a chat prompt adds one marker token per
role and one per message end, plus the assistant marker; the model never emits EOS, so
completion_tokens == max_tokens and finish_reason == "length"; temperature 0 is greedy.
"""

from __future__ import annotations

import pytest

from llm_backends.router.backends.mlx import MLXBackend
from llm_backends.router.backends.openai import OpenAIBackend
from llm_backends.router.errors import BackendRequestError, ModelNotFound
from llm_backends.router.transport import HttpPool
from llm_backends.router.types import CompletionRequest
from tests.fakes.mlx_server import MLXServer
from tests.router.backends.helpers import collect, make_config, text_of

pytestmark = pytest.mark.mlx

# Non-ASCII on purpose: tokens are bytes, not characters.
PROMPT = "Grüße, 世界"
USER = "Hi there"


def greedy(max_tokens: int, **fields: object) -> CompletionRequest:
    if "messages" not in fields:
        fields.setdefault("prompt", PROMPT)
    return CompletionRequest(temperature=0.0, max_tokens=max_tokens, **fields)  # type: ignore[arg-type]


def chat(max_tokens: int) -> CompletionRequest:
    return greedy(max_tokens, messages=[{"role": "user", "content": USER}])


@pytest.fixture
def mlx(client: HttpPool) -> MLXBackend:
    return MLXBackend(client)


async def test_completion_counts_and_determinism(mlx: MLXBackend, mlx_server: MLXServer) -> None:
    config = make_config(mlx_server.url, "mlx")

    first = await mlx.complete(config, greedy(8))
    second = await mlx.complete(config, greedy(8))

    assert first.prompt_tokens == len(PROMPT.encode()) != len(PROMPT)
    assert first.completion_tokens == 8
    assert first.finish_reason == "length"
    assert len(first.text) == 8 and first.text.isprintable()
    assert second.text == first.text


async def test_chat_counts(mlx: MLXBackend, mlx_server: MLXServer) -> None:
    result = await mlx.complete(make_config(mlx_server.url, "mlx"), chat(5))

    # "<|user|>" + content + "<|end|>" + "<|assistant|>": three marker tokens.
    assert result.prompt_tokens == len(USER.encode()) + 3
    assert result.completion_tokens == 5
    assert result.finish_reason == "length"
    assert len(result.text) == 5


@pytest.mark.parametrize("request_", [greedy(6), chat(6)], ids=["completions", "chat"])
async def test_stream_matches_complete(
    mlx: MLXBackend, mlx_server: MLXServer, request_: CompletionRequest
) -> None:
    config = make_config(mlx_server.url, "mlx")

    whole = await mlx.complete(config, request_)
    chunks = await collect(mlx.stream(config, request_))

    assert text_of(chunks) == whole.text
    final = chunks[-1]
    assert final.done and not any(c.done for c in chunks[:-1])
    assert final.finish_reason == "length"
    assert (final.prompt_tokens, final.completion_tokens) == (whole.prompt_tokens, 6)


async def test_stop_sequence_is_honoured(mlx: MLXBackend, mlx_server: MLXServer) -> None:
    config = make_config(mlx_server.url, "mlx")
    free_text = (await mlx.complete(config, greedy(16))).text
    stop = free_text[4:6]

    result = await mlx.complete(config, greedy(16, stop=[stop]))

    assert result.finish_reason == "stop"
    assert result.text == free_text[: free_text.index(stop)]


async def test_bad_parameter_is_a_request_error(mlx: MLXBackend, mlx_server: MLXServer) -> None:
    with pytest.raises(BackendRequestError, match="max_tokens"):
        await mlx.complete(make_config(mlx_server.url, "mlx"), greedy(0))


@pytest.mark.parametrize("suffix", ["", "/v1"])
async def test_openai_backend_with_served_model_path(
    client: HttpPool, mlx_server: MLXServer, suffix: str
) -> None:
    config = make_config(
        mlx_server.url + suffix, "openai", backend_model=str(mlx_server.model_path)
    )
    backend = OpenAIBackend(client)

    result = await backend.complete(config, greedy(4))
    chunks = await collect(backend.stream(config, chat(4)))

    assert (result.prompt_tokens, result.completion_tokens) == (len(PROMPT.encode()), 4)
    assert chunks[-1].completion_tokens == 4 and len(text_of(chunks)) == 4


async def test_foreign_model_name_is_model_not_found_which_mlx_backend_avoids(
    client: HttpPool, mlx: MLXBackend, mlx_server: MLXServer
) -> None:
    """Why MLXBackend sends no `model`: mlx_lm.server takes any other name as a hub id."""
    with pytest.raises(ModelNotFound) as caught:
        await OpenAIBackend(client).complete(make_config(mlx_server.url, "openai"), greedy(2))
    assert caught.value.status_code == 404

    # Same config for the mlx backend (model_name "phi3:mini", no backend_model): it works.
    result = await mlx.complete(make_config(mlx_server.url, "mlx"), greedy(2))
    assert result.completion_tokens == 2
