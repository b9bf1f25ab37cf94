"""The Admin API and gateway over HTTP, for the CLI: the same calls work on a remote server.

Where: `ADMIN_API_URL`. Who: `ADMIN_API_TOKEN`, else the state directory's token file (the
one `llm-backends token ensure` wrote; TOKEN_FILE to choose another). Failures become
`ClientError` with a message for a human.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from llm_backends.settings import Settings
from llm_backends.state import admin_token

#: Seconds to connect and between bytes of an answer (a generation may think for a while).
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 300.0


class ClientError(Exception):
    """A failed call, said plainly; `status` is the HTTP status (None: never answered)."""

    def __init__(self, message: str, status: int | None = None, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def _detail(response: httpx.Response) -> tuple[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason_phrase, None
    if isinstance(body, dict):
        if isinstance(body.get("detail"), str):
            return body["detail"], body
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"]), body
        if isinstance(error, str):
            return error, body
    return str(body)[:500], body


def _who(response: httpx.Response) -> str:
    """The answering backend type, and the server when the gateway names it."""
    backend = response.headers.get("x-llm-backend", "")
    endpoint = response.headers.get("x-llm-endpoint", "")
    return f"{backend} {endpoint}" if endpoint else backend


@dataclass
class StreamStats:
    """What a streamed answer was: who answered, time to first token, tokens (= chunks)."""

    backend: str = ""
    first_token_seconds: float | None = None
    tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_second(self) -> float | None:
        if self.first_token_seconds is None or self.tokens < 2:
            return None
        generating = self.seconds - self.first_token_seconds
        return (self.tokens - 1) / generating if generating > 0 else None


class AdminClient:
    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
        )

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> AdminClient:
        settings = settings or Settings()
        return cls(settings.admin_api_url, admin_token(settings))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise ClientError(f"cannot reach {self.base_url}: {error}") from None
        if response.status_code >= 400:
            message, body = _detail(response)
            if response.status_code == 401:
                message += " (set ADMIN_API_TOKEN, or TOKEN_FILE to a file holding a token)"
            raise ClientError(message, response.status_code, body)
        return response.json() if response.content else None

    # Admin API
    def list_backends(self, enabled_only: bool = False) -> list[dict[str, Any]]:
        params = {"enabled_only": "true"} if enabled_only else {}
        return self.call("GET", "/api/llm-backends", params=params)

    def get_backend(self, backend_id: int) -> dict[str, Any]:
        return self.call("GET", f"/api/llm-backends/{backend_id}")

    def find_backend(self, id_or_model: str) -> dict[str, Any]:
        """By id (digits) or by model name."""
        if id_or_model.isdigit():
            return self.get_backend(int(id_or_model))
        for row in self.list_backends():
            if row["model_name"] == id_or_model:
                return row
        raise ClientError(f"no config for model {id_or_model!r}", 404)

    def create_backend(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", "/api/llm-backends", json=body)

    def update_backend(self, backend_id: int, body: dict[str, Any]) -> dict[str, Any]:
        return self.call("PUT", f"/api/llm-backends/{backend_id}", json=body)

    def toggle_backend(self, backend_id: int) -> dict[str, Any]:
        return self.call("POST", f"/api/llm-backends/{backend_id}/toggle")

    def delete_backend(self, backend_id: int) -> dict[str, Any]:
        return self.call("DELETE", f"/api/llm-backends/{backend_id}")

    def status(self) -> dict[str, Any] | None:
        """The servers' health, or None when this server has no status endpoint."""
        try:
            return self.call("GET", "/api/llm-backends/status")
        except ClientError as error:
            if error.status in (404, 405, 422):  # 422: an older server reads "status" as an id
                return None
            raise

    def audit(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.call("GET", "/api/audit", params={k: v for k, v in params.items() if v})

    # Gateway
    def complete(self, model: str, prompt: str, max_tokens: int) -> tuple[str, str]:
        """A whole chat completion: (answering backend, text)."""
        body = {
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": max_tokens,
            "stream": False,
        }
        try:
            response = self._http.post("/v1/chat/completions", json=body)
        except httpx.HTTPError as error:
            raise ClientError(f"cannot reach {self.base_url}: {error}") from None
        if response.status_code >= 400:
            message, payload = _detail(response)
            raise ClientError(message, response.status_code, payload)
        text = response.json()["choices"][0]["message"].get("content") or ""
        return _who(response), text

    def stream_chat(
        self, model: str, messages: list[dict[str, Any]], stats: StreamStats, clock: Any
    ) -> Iterator[str]:
        """Yield the answer's text pieces; fills `stats` as they come."""
        body = {"model": model, "messages": messages, "stream": True}
        started = clock()
        try:
            with self._http.stream("POST", "/v1/chat/completions", json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    message, payload = _detail(response)
                    raise ClientError(message, response.status_code, payload)
                stats.backend = _who(response)
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    chunk = orjson.loads(data)
                    if "error" in chunk:
                        error = chunk["error"]
                        raise ClientError(error.get("message", str(error)), None, chunk)
                    choices = chunk.get("choices") or [{}]
                    text = (choices[0].get("delta") or {}).get("content")
                    if text:
                        if stats.first_token_seconds is None:
                            stats.first_token_seconds = clock() - started
                        stats.tokens += 1
                        yield text
        except httpx.HTTPError as error:
            raise ClientError(f"cannot reach {self.base_url}: {error}") from None
        finally:
            stats.seconds = clock() - started
