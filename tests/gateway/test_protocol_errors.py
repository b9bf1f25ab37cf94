"""Errors before any handler runs — unknown path (404), wrong method (405), oversized body
(413) — come in the protocol of the path; the Admin API keeps `{"detail": ...}`."""

from __future__ import annotations

import ollama
import openai
import pytest

from tests.gateway.conftest import GatewayServer


def openai_error(response) -> dict:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def ollama_error(response) -> str:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str)
    return body["error"]


def test_unknown_paths(gateway: GatewayServer) -> None:
    http = gateway.http()
    response = http.post("/v1/responses", json={})
    assert response.status_code == 404
    assert openai_error(response)["message"] == "Not found: no gateway route POST /v1/responses"
    assert openai_error(response)["code"] == "not_found"
    response = http.request("DELETE", "/api/delete", json={"model": "x"})
    assert response.status_code == 404
    assert ollama_error(response) == "Not found: no gateway route DELETE /api/delete"
    # The Admin API's paths and the rest keep FastAPI's shape.
    assert http.get("/api/llm-backends/nope/nope").json() == {"detail": "Not Found"}
    assert http.get("/nowhere").json() == {"detail": "Not Found"}


def test_wrong_methods(gateway: GatewayServer) -> None:
    http = gateway.http()
    response = http.get("/v1/chat/completions")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert openai_error(response)["message"] == (
        "Method not allowed: GET /v1/chat/completions (allowed: POST)"
    )
    response = http.get("/api/embed")
    assert response.status_code == 405
    assert ollama_error(response) == "Method not allowed: GET /api/embed (allowed: POST)"
    assert http.delete("/api/llm-backends").json() == {"detail": "Method Not Allowed"}


def test_oversized_bodies(start_gateway) -> None:  # type: ignore[no-untyped-def]
    gateway: GatewayServer = start_gateway(max_body_bytes=2048)
    http = gateway.http()
    big = {"model": "m", "input": "x" * 4096}
    response = http.post("/v1/embeddings", json=big)
    assert response.status_code == 413
    message = openai_error(response)["message"]
    assert message == "Request body too large: the limit is 2048 bytes (MAX_BODY_BYTES)"
    response = http.post("/api/embed", json=big)
    assert response.status_code == 413 and ollama_error(response).startswith("Request body")
    assert http.post("/api/llm-backends", json=big).json() == {"detail": "Request body too large"}


def test_clients_parse_them(gateway: GatewayServer) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        gateway.openai().post("/nothing-here", cast_to=object, body={})
    assert "no gateway route POST /v1/nothing-here" in str(caught.value)
    with pytest.raises(ollama.ResponseError) as refused:
        gateway.ollama().delete("some-model")
    assert refused.value.status_code == 404
    assert refused.value.error == "Not found: no gateway route DELETE /api/delete"
