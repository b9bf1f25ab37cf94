"""The embeddings wire protocols: Ollama's `/api/embed` (and legacy `/api/embeddings`) and the
OpenAI `/v1/embeddings` that vLLM, llama.cpp and LM Studio serve.

A request that came in the backend's own protocol (`request.passthrough`) is sent with only
`model` replaced and its answer kept whole; otherwise the body is built from the typed request
here, and what the target cannot honour is a 400 naming the field and the backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_backends.router.backends import _http
from llm_backends.router.embeddings import (
    BackendEmbeddings,
    EmbeddingRequest,
    decode_vector,
)
from llm_backends.router.errors import BackendRequestError
from llm_backends.router.types import BackendConfig

if TYPE_CHECKING:
    from llm_backends.router.backends.base import Backend

#: The fields each protocol's embedding request has, which translation carries over (or
#: refuses); any other field of a client's body cannot reach a backend of the other protocol.
_TRANSLATED = {
    "openai": frozenset({"model", "input", "encoding_format", "dimensions", "user"}),
    "ollama": frozenset(
        {"model", "input", "prompt", "truncate", "dimensions", "keep_alive", "options"}
    ),
}


def refuse_untranslatable(request: EmbeddingRequest, config: BackendConfig, kind: str) -> None:
    """A field of the client's own protocol that has no equivalent here is a 400, not dropped."""
    passthrough = request.passthrough
    if passthrough is None:
        return
    unknown = sorted(set(passthrough.body) - _TRANSLATED[passthrough.protocol])
    if unknown:
        names = ", ".join(unknown)
        raise refuse(names, f"unknown {passthrough.protocol} fields are not accepted", config, kind)


def refuse(field: str, why: str, config: BackendConfig, kind: str) -> BackendRequestError:
    """400: a field the backend cannot honour, named (never silently dropped)."""
    error = _http.fail(BackendRequestError, f"{field}: {why} by backend {kind!r}", config, kind)
    assert isinstance(error, BackendRequestError)
    return error


async def ollama_embed(
    backend: Backend, config: BackendConfig, request: EmbeddingRequest
) -> BackendEmbeddings:
    model = config.backend_model or config.model_name
    passthrough = request.passthrough
    if passthrough is not None and passthrough.protocol == "ollama":
        path = "/api/embeddings" if passthrough.legacy else "/api/embed"
        payload = {**passthrough.body, "model": model}
        data = await _post(backend, config, path, payload, request.hops)
        key = "embedding" if passthrough.legacy else "embeddings"
        if not isinstance(data.get(key), list):
            raise _http.invalid(f"answer lacks {key!r}", config, backend.kind)
        return BackendEmbeddings(None, data.get("prompt_eval_count"), raw=data)
    refuse_untranslatable(request, config, backend.kind)
    if request.tokens is not None:
        raise refuse("input", "token arrays are not accepted", config, backend.kind)
    body: dict[str, Any] = {"model": model, "input": list(request.texts or ())}
    if request.dimensions:
        body["dimensions"] = request.dimensions
    if request.truncate is not None:
        body["truncate"] = request.truncate
    if request.keep_alive is not None:
        body["keep_alive"] = request.keep_alive
    if request.options:
        body["options"] = dict(request.options)
    data = await _post(backend, config, "/api/embed", body, request.hops)
    vectors = data.get("embeddings")
    if not isinstance(vectors, list) or len(vectors) != request.count:
        raise _http.invalid("answer lacks one embedding per input", config, backend.kind)
    return BackendEmbeddings(
        vectors,
        data.get("prompt_eval_count"),
        data.get("total_duration"),
        data.get("load_duration"),
    )


async def openai_embed(
    backend: Backend, config: BackendConfig, request: EmbeddingRequest, model: str | None
) -> BackendEmbeddings:
    passthrough = request.passthrough
    if passthrough is not None and passthrough.protocol == "openai":
        payload = dict(passthrough.body)
        if model is not None:
            payload["model"] = model
        else:
            payload.pop("model", None)
        data = await _post(backend, config, "/v1/embeddings", payload, request.hops, openai=True)
        if not isinstance(data.get("data"), list):
            raise _http.invalid("answer lacks 'data'", config, backend.kind)
        return BackendEmbeddings(None, _usage_tokens(data), raw=data)
    refuse_untranslatable(request, config, backend.kind)
    if request.count == 0:
        # Ollama's empty input only loads the model: an OpenAI server has nothing to load.
        return BackendEmbeddings([], 0)
    if request.options:
        names = ", ".join(f"options.{name}" for name in sorted(request.options))
        raise refuse(names, "model options are not accepted", config, backend.kind)
    body: dict[str, Any] = {"encoding_format": "float"}
    if model is not None:
        body["model"] = model
    if request.texts is not None:
        body["input"] = list(request.texts)
    else:
        body["input"] = [list(tokens) for tokens in request.tokens or ()]
    if request.dimensions:
        body["dimensions"] = request.dimensions
    if request.truncate:
        # vLLM's extension: -1 cuts each input to the model's context length, as Ollama does.
        body["truncate_prompt_tokens"] = -1
    data = await _post(backend, config, "/v1/embeddings", body, request.hops, openai=True)
    try:
        items = sorted(data["data"], key=lambda item: item.get("index", 0))
        vectors = [decode_vector(item["embedding"]) for item in items]
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise _http.invalid(f"answer lacks {exc!r}", config, backend.kind) from exc
    if len(vectors) != request.count:
        raise _http.invalid("answer lacks one embedding per input", config, backend.kind)
    return BackendEmbeddings(vectors, _usage_tokens(data))


async def _post(
    backend: Backend,
    config: BackendConfig,
    path: str,
    payload: dict[str, Any],
    hops: tuple[str, ...],
    *,
    openai: bool = False,
) -> dict[str, Any]:
    """POST `payload`; `hops` (the request's) go out as the loop-protection header."""
    if openai:
        url = config.endpoint_url.rstrip("/").removesuffix("/v1") + path
    else:
        url = _http.join_url(config.endpoint_url, path)
    body = await backend.post_json(url, payload, config, hops)
    return _http.load_object(body, config, backend.kind)


def _usage_tokens(data: dict[str, Any]) -> int | None:
    usage = data.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("prompt_tokens"), int):
        return int(usage["prompt_tokens"])
    return None
