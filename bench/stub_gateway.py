"""A stand-in for the llm-backends server, used only to develop the benchmark (`run.py --stub`).

It speaks just what the benchmark uses, with the real `LLMRouter` behind it: the Admin API's
`POST /api/llm-backends`, `PUT /api/llm-backends/{id}`, `GET /api/llm-backends/model/{name}`,
`GET /health`, and the gateway's `POST /v1/chat/completions` (JSON and SSE). Configs live in
memory and in `stub-configs.json` in the working directory, so they survive a restart (the
cold-start scenario restarts it). Its numbers are labelled "stub" and never stand for the
real server's.

    python -m bench.stub_gateway --port 8080     # env: ADMIN_API_TOKEN, OLLAMA_URL
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from llm_backends import LLMRouter, LLMRouterError
from llm_backends.logs import configure_logging
from llm_backends.router.types import BackendConfig

ROUTER = web.AppKey("router", LLMRouter)
CONFIGS = web.AppKey("configs", dict)
STORE = Path("stub-configs.json")


def _save(configs: dict[int, dict[str, Any]]) -> None:
    STORE.write_bytes(orjson.dumps(list(configs.values())))


def _load() -> dict[int, dict[str, Any]]:
    if not STORE.exists():
        return {}
    return {int(row["id"]): row for row in orjson.loads(STORE.read_bytes())}


class MemorySource:
    """Configs by model name, as the Admin API would answer them."""

    def __init__(self, configs: dict[int, dict[str, Any]]) -> None:
        self.configs = configs

    async def get(self, model_name: str) -> BackendConfig | None:
        for row in self.configs.values():
            if row["model_name"] == model_name and row.get("enabled", True):
                return BackendConfig.from_mapping(row)
        return None


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _authorized(request: web.Request) -> bool:
    token = os.environ.get("ADMIN_API_TOKEN", "")
    return not token or request.headers.get("Authorization") == f"Bearer {token}"


async def create(request: web.Request) -> web.Response:
    if not _authorized(request):
        return _json({"detail": "unauthorized"}, 401)
    configs = request.app[CONFIGS]
    row = await request.json(loads=orjson.loads)
    row["id"] = len(configs) + 1
    configs[row["id"]] = row
    _save(configs)
    request.app[ROUTER].invalidate(row["model_name"])
    return _json(row, 201)


async def update(request: web.Request) -> web.Response:
    if not _authorized(request):
        return _json({"detail": "unauthorized"}, 401)
    row = request.app[CONFIGS].get(int(request.match_info["id"]))
    if row is None:
        return _json({"detail": "not found"}, 404)
    row.update(await request.json(loads=orjson.loads))
    _save(request.app[CONFIGS])
    request.app[ROUTER].invalidate(row["model_name"])
    return _json(row)


async def by_model(request: web.Request) -> web.Response:
    for row in request.app[CONFIGS].values():
        if row["model_name"] == request.match_info["name"]:
            return _json(row)
    return _json({"detail": "not found"}, 404)


async def health(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def chat(request: web.Request) -> web.StreamResponse:
    body = await request.json(loads=orjson.loads)
    router = request.app[ROUTER]
    model = body.get("model", "")
    created = int(time.time())
    try:
        if body.get("stream"):
            return await _stream(request, router, body, model, created)
        result = await router.chat_result(
            model, body["messages"], body.get("temperature"), body.get("max_tokens")
        )
    except LLMRouterError as error:
        return _json({"error": {"message": str(error)}}, error.http_status)
    usage = {
        "prompt_tokens": result.prompt_tokens or 0,
        "completion_tokens": result.completion_tokens or 0,
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return _json(
        {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "finish_reason": result.finish_reason,
                    "message": {"role": "assistant", "content": result.response},
                }
            ],
            "usage": usage,
        }
    )


async def _stream(
    request: web.Request, router: LLMRouter, body: dict[str, Any], model: str, created: int
) -> web.StreamResponse:
    chunks = router.stream_chat_chunks(
        model, body["messages"], body.get("temperature"), body.get("max_tokens")
    )
    first = await anext(chunks)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await resp.prepare(request)
    chunk: Any = first
    try:
        while True:
            delta = {"content": chunk.text} if chunk.text else {}
            event = {
                "id": "chatcmpl-stub",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": chunk.finish_reason}],
            }
            await resp.write(b"data: " + orjson.dumps(event) + b"\n\n")
            if chunk.done:
                break
            chunk = await anext(chunks)
    except StopAsyncIteration:
        pass
    finally:
        await chunks.aclose()
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


def make_app() -> web.Application:
    app = web.Application()
    configs = _load()
    app[CONFIGS] = configs
    app[ROUTER] = LLMRouter(
        config_source=MemorySource(configs),
        stats_sink=None,
        ollama_url=os.environ.get("OLLAMA_URL"),
    )
    app.router.add_get("/health", health)
    app.router.add_post("/api/llm-backends", create)
    app.router.add_put("/api/llm-backends/{id}", update)
    app.router.add_get("/api/llm-backends/model/{name}", by_model)
    app.router.add_post("/v1/chat/completions", chat)

    async def close_router(app: web.Application) -> None:
        await app[ROUTER].close()

    app.on_cleanup.append(close_router)
    return app


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.stub_gateway")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    args = p.parse_args()
    configure_logging("WARNING", json=True)
    import uvloop

    uvloop.install()
    web.run_app(make_app(), host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
