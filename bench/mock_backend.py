"""A mock inference server speaking the OpenAI and Ollama HTTP protocols.

Why raw asyncio + httptools (+ uvloop) rather than a web framework: the mock shares a core with
the load generator and must never be what limits a gateway's throughput. On this kind of machine
it answers well over 10k requests/s on one core (see `bench/RESULTS.md`), several times what any
gateway under test reaches.

    python -m bench.mock_backend --port 9000 [--latency-ms 5] [--chunks 8] [--text "hi"]
    python -m bench.mock_backend --port 9001 --hang    # accepts connections, never answers

Prints `READY <port>` on stdout once listening (`--port 0` picks a free port), so a parent can
wait on that line instead of sleeping.

Routes: OpenAI `POST /v1/chat/completions`, `POST /v1/completions` (SSE with `stream: true`,
ending in `data: [DONE]`), `GET /v1/models`; Ollama `POST /api/chat`, `POST /api/generate`
(NDJSON; Ollama streams unless `stream: false`), `GET /api/tags`, `GET /api/version`, `GET /`;
`GET /health` (mlx_lm.server's); `GET /mock/stats` (requests served, by path).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httptools

from bench import embeddings_mock

try:
    import orjson

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    loads = orjson.loads
except ImportError:  # pragma: no cover - the project venv has orjson
    import json

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    loads = json.loads


DEFAULT_TEXT = "Hello from the mock backend."
REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 405: b"Method Not Allowed"}


@dataclass(slots=True)
class Options:
    latency_s: float = 0.0
    chunks: int = 8
    chunk_delay_s: float = 0.0
    text: str = DEFAULT_TEXT
    models: frozenset[str] = frozenset()
    words: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.words = self.text.split() or ["."]


STATS: Counter[str] = Counter()


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())


def _head(status: int, content_type: bytes, length: int | None, keep_alive: bool) -> bytes:
    parts = [b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\n" % (status, REASONS[status], content_type)]
    if length is None:
        parts.append(b"Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n")
    else:
        parts.append(b"Content-Length: %d\r\n" % length)
    if not keep_alive:
        parts.append(b"Connection: close\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Reply:
    """One response: a JSON body (`pieces is None`) or a chunked stream of `pieces`."""

    __slots__ = ("body", "content_type", "pieces", "status")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        content_type: bytes = b"application/json",
        pieces: list[bytes] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.pieces = pieces


def _error(status: int, message: str, ollama: bool) -> Reply:
    if ollama:
        return Reply(status, dumps({"error": message}))
    kind = "invalid_request_error" if status < 500 else "server_error"
    return Reply(status, dumps({"error": {"message": message, "type": kind, "code": status}}))


def _prompt_tokens(req: dict[str, Any]) -> int:
    """A rough token count (words), cheap enough to do per request."""
    if "messages" in req:
        msgs = req["messages"]
        return sum(len(str(m.get("content", "")).split()) for m in msgs if isinstance(m, dict))
    return len(str(req.get("prompt", "")).split())


def _piece(opts: Options, i: int) -> str:
    last = i == opts.chunks - 1
    return opts.words[i % len(opts.words)] + ("" if last else " ")


def openai_reply(path: str, req: dict[str, Any], opts: Options) -> Reply:
    chat = path == "/v1/chat/completions"
    if chat and not isinstance(req.get("messages"), list):
        return _error(400, "'messages' is required", ollama=False)
    if not chat and "prompt" not in req:
        return _error(400, "'prompt' is required", ollama=False)
    model = str(req.get("model") or "mock")
    created = int(time.time())
    ptok = _prompt_tokens(req)
    cid = ("chatcmpl-" if chat else "cmpl-") + os.urandom(6).hex()
    if not req.get("stream"):
        ctok = len(opts.words)
        choice: dict[str, Any] = {"index": 0, "finish_reason": "stop", "logprobs": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": opts.text}
        else:
            choice["text"] = opts.text
        return Reply(
            200,
            dumps(
                {
                    "id": cid,
                    "object": "chat.completion" if chat else "text_completion",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_mock",
                    "choices": [choice],
                    "usage": {
                        "prompt_tokens": ptok,
                        "completion_tokens": ctok,
                        "total_tokens": ptok + ctok,
                    },
                }
            ),
        )
    obj = "chat.completion.chunk" if chat else "text_completion"
    pieces: list[bytes] = []
    for i in range(opts.chunks):
        if chat:
            delta: dict[str, Any] = {"content": _piece(opts, i)}
            if i == 0:
                delta["role"] = "assistant"
            choice = {"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}
        else:
            choice = {"index": 0, "text": _piece(opts, i), "finish_reason": None, "logprobs": None}
        event = {"id": cid, "object": obj, "created": created, "model": model, "choices": [choice]}
        pieces.append(b"data: " + dumps(event) + b"\n\n")
    end_choice: dict[str, Any] = {"index": 0, "finish_reason": "stop", "logprobs": None}
    end_choice.update({"delta": {}} if chat else {"text": ""})
    end = {"id": cid, "object": obj, "created": created, "model": model, "choices": [end_choice]}
    pieces.append(b"data: " + dumps(end) + b"\n\n")
    if (req.get("stream_options") or {}).get("include_usage"):
        usage = {"prompt_tokens": ptok, "completion_tokens": opts.chunks}
        usage["total_tokens"] = ptok + opts.chunks
        tail = {"id": cid, "object": obj, "created": created, "model": model, "choices": []}
        tail["usage"] = usage
        pieces.append(b"data: " + dumps(tail) + b"\n\n")
    pieces.append(b"data: [DONE]\n\n")
    return Reply(200, content_type=b"text/event-stream", pieces=pieces)


def _ollama_stats(ptok: int, ctok: int, latency_s: float) -> dict[str, Any]:
    eval_ns = ctok * 10_000_000  # 100 tokens/s, as a small local model would
    prompt_ns = ptok * 1_000_000
    return {
        "total_duration": int(latency_s * 1e9) + eval_ns + prompt_ns + 1_000_000,
        "load_duration": 1_000_000,
        "prompt_eval_count": ptok,
        "prompt_eval_duration": prompt_ns,
        "eval_count": ctok,
        "eval_duration": eval_ns,
    }


def ollama_reply(path: str, req: dict[str, Any], opts: Options) -> Reply:
    chat = path == "/api/chat"
    if not req.get("model"):
        return _error(400, "model is required", ollama=True)
    if chat and not isinstance(req.get("messages"), list):
        return _error(400, "messages is required", ollama=True)
    model = str(req["model"])
    ptok = _prompt_tokens(req)
    created = _now_iso()
    key = "message" if chat else "response"

    def content(text: str) -> Any:
        return {"role": "assistant", "content": text} if chat else text

    if req.get("stream", True) is False:
        ctok = len(opts.words)
        body = {"model": model, "created_at": created, key: content(opts.text), "done": True}
        body["done_reason"] = "stop"
        body.update(_ollama_stats(ptok, ctok, opts.latency_s))
        if not chat:
            body["context"] = [1, 2, 3]
        return Reply(200, dumps(body))
    pieces = [
        dumps({"model": model, "created_at": created, key: content(_piece(opts, i)), "done": False})
        + b"\n"
        for i in range(opts.chunks)
    ]
    last = {"model": model, "created_at": created, key: content(""), "done": True}
    last["done_reason"] = "stop"
    last.update(_ollama_stats(ptok, opts.chunks, opts.latency_s))
    if not chat:
        last["context"] = [1, 2, 3]
    pieces.append(dumps(last) + b"\n")
    return Reply(200, content_type=b"application/x-ndjson", pieces=pieces)


def _get_reply(path: str, opts: Options) -> Reply | None:
    if path == "/v1/models":
        names = sorted(opts.models) or ["mock"]
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "mock"} for n in names]
        return Reply(200, dumps({"object": "list", "data": data}))
    if path == "/api/tags":
        names = sorted(opts.models) or ["mock:latest"]
        models = [
            {
                "name": n,
                "model": n,
                "modified_at": "2024-01-01T00:00:00Z",
                "size": 1_000_000,
                "digest": "0" * 64,
                "details": {"format": "gguf", "family": "mock", "parameter_size": "1B"},
            }
            for n in names
        ]
        return Reply(200, dumps({"models": models}))
    if path == "/api/version":
        return Reply(200, dumps({"version": "0.6.0-mock"}))
    if path == "/health":
        return Reply(200, dumps({"status": "ok"}))
    if path == "/":
        return Reply(200, b"Ollama is running", b"text/plain; charset=utf-8")
    if path == "/mock/stats":
        return Reply(200, dumps({"requests": sum(STATS.values()), "by_path": dict(STATS)}))
    return None


POST_ROUTES = {"/v1/chat/completions", "/v1/completions", "/api/chat", "/api/generate"}


def route(method: str, path: str, body: bytes, opts: Options) -> Reply:
    """Pure function of the request: what to answer (no I/O, no timing)."""
    ollama = path.startswith("/api/")
    if path in POST_ROUTES:
        if method != "POST":
            return _error(405, f"method {method} not allowed", ollama)
        try:
            req = loads(body)
        except ValueError:
            return _error(400, "invalid JSON body", ollama)
        if not isinstance(req, dict):
            return _error(400, "body must be a JSON object", ollama)
        model = req.get("model")
        if opts.models and model not in opts.models:
            return _error(404, f"model '{model}' not found", ollama)
        STATS[path] += 1
        return ollama_reply(path, req, opts) if ollama else openai_reply(path, req, opts)
    if path in embeddings_mock.ROUTES and method == "POST":
        req = loads(body)
        STATS[path] += 1
        return Reply(200, dumps(embeddings_mock.embed_reply(path, req)))
    reply = _get_reply(path, opts)
    if reply is None:
        return _error(404, f"no route {path}", ollama)
    if method not in ("GET", "HEAD"):
        return _error(405, f"method {method} not allowed", ollama)
    STATS[path] += 1
    return reply


class MockProtocol(asyncio.Protocol):
    """One HTTP/1.1 keep-alive connection, parsed by httptools."""

    __slots__ = ("body", "closing", "loop", "opts", "parser", "transport", "url")

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.body: list[bytes] = []
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._send(Reply(400, dumps({"error": "bad request"})), keep_alive=False)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method().decode()
        path = self.url.split(b"?", 1)[0].decode()
        reply = route(method, path, b"".join(self.body), self.opts)
        keep_alive = self.parser.should_keep_alive()
        if method == "HEAD":
            reply = Reply(reply.status, b"", reply.content_type)
        opts = self.opts
        if reply.pieces is not None and opts.chunk_delay_s > 0:
            self.loop.create_task(self._stream_slowly(reply, keep_alive))
        elif opts.latency_s > 0:
            self.loop.call_later(opts.latency_s, self._send, reply, keep_alive)
        else:
            self._send(reply, keep_alive)

    def _send(self, reply: Reply, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None or self.closing or transport.is_closing():
            return
        if reply.pieces is None:
            head = _head(reply.status, reply.content_type, len(reply.body), keep_alive)
            transport.write(head + reply.body)
        else:
            out = [_head(reply.status, reply.content_type, None, keep_alive)]
            out.extend(_chunked(p) for p in reply.pieces)
            out.append(b"0\r\n\r\n")
            transport.write(b"".join(out))
        if not keep_alive:
            transport.close()

    async def _stream_slowly(self, reply: Reply, keep_alive: bool) -> None:
        """Streams with a pause before the first chunk (latency) and between chunks."""
        transport = self.transport
        assert transport is not None and reply.pieces is not None
        if self.opts.latency_s > 0:
            await asyncio.sleep(self.opts.latency_s)
        if transport.is_closing():
            return
        transport.write(_head(reply.status, reply.content_type, None, keep_alive))
        for i, piece in enumerate(reply.pieces):
            if i:
                await asyncio.sleep(self.opts.chunk_delay_s)
            if transport.is_closing():
                return
            transport.write(_chunked(piece))
        transport.write(b"0\r\n\r\n")
        if not keep_alive:
            transport.close()


class HangProtocol(asyncio.Protocol):
    """Accepts the connection and reads the request, then never answers: a wedged backend."""

    def data_received(self, data: bytes) -> None:
        return None


def _install_uvloop() -> str:
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


async def serve(host: str, port: int, opts: Options, hang: bool) -> None:
    loop = asyncio.get_running_loop()
    factory = HangProtocol if hang else (lambda: MockProtocol(opts))
    server = await loop.create_server(factory, host, port, backlog=4096, reuse_address=True)
    bound = server.sockets[0].getsockname()[1]
    print(f"READY {bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.mock_backend", description=__doc__.split("\n")[0]
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed as READY)")
    p.add_argument("--latency-ms", type=float, default=0.0, help="fixed delay before answering")
    p.add_argument("--chunks", type=int, default=8, help="chunks per streamed answer")
    p.add_argument("--chunk-delay-ms", type=float, default=0.0, help="pause between chunks")
    p.add_argument("--text", default=DEFAULT_TEXT, help="answer text (non-streaming)")
    p.add_argument("--models", default="", help="comma-separated known models (default: any)")
    p.add_argument("--hang", action="store_true", help="accept connections, never answer")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    opts = Options(
        latency_s=args.latency_ms / 1000,
        chunks=max(1, args.chunks),
        chunk_delay_s=args.chunk_delay_ms / 1000,
        text=args.text,
        models=frozenset(m for m in args.models.split(",") if m),
    )
    _install_uvloop()
    try:
        asyncio.run(serve(args.host, args.port, opts, args.hang))
    except KeyboardInterrupt:
        pass
    sys.stdout.flush()


if __name__ == "__main__":
    main()
