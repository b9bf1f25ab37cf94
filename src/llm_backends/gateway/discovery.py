"""What the backends themselves report about their models, for the gateway's discovery routes:
the default Ollama's model list (briefly cached), each Ollama's `/api/ps`, a model's
`/api/show` or its `/v1/models` entry.

Discovery is rare and off the request path, so it has its own small HTTP session and short
timeouts: a dead backend costs at most `discovery_timeout` seconds, and a dead default Ollama
at most that once per `discovery_cache_ttl` (its failure is cached like a success).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import structlog

from llm_backends.gateway.errors import GatewayError, redact
from llm_backends.router.backends._http import error_message
from llm_backends.router.core import LLMRouter
from llm_backends.router.fallback import Attempt
from llm_backends.settings import Settings

log = structlog.get_logger("llm_backends.gateway")


def default_ollama_urls(router: LLMRouter) -> list[str]:
    """The Ollama servers that answer models without a config (OLLAMA_URL, comma-separated)."""
    return [url.rstrip("/") for url in router.ollama_urls]


def canonical(name: str) -> str:
    """Ollama's own spelling: a name without a tag means `:latest`."""
    tail = name.rsplit("/", 1)[-1]
    return name if ":" in tail else f"{name}:latest"


def openai_root(endpoint: str) -> str:
    return endpoint.rstrip("/").removesuffix("/v1")


@dataclass(frozen=True, slots=True)
class DefaultModel:
    """One model a default Ollama lists (its `/api/tags` entry, as it sent it)."""

    url: str
    entry: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.entry.get("name") or self.entry.get("model") or "")


class BackendAnswerError(Exception):
    """A backend answered a discovery call with an error status (kept for the client)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Discovery:
    """Discovery calls to backends, with their own session (made in the running loop)."""

    def __init__(
        self,
        router: LLMRouter,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._router = router
        self._timeout = aiohttp.ClientTimeout(total=settings.discovery_timeout)
        self._ttl = settings.discovery_cache_ttl
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._defaults: list[DefaultModel] = []
        self._defaults_until = float("-inf")
        self._lock: asyncio.Lock | None = None

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- default Ollama models ------------------------------------------------------------

    async def default_models(self) -> list[DefaultModel]:
        """The default Ollama(s)' models, refreshed at most every `discovery_cache_ttl` s."""
        if self._clock() < self._defaults_until:
            return self._defaults
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one fetch at a time; the others reuse its answer
            if self._clock() >= self._defaults_until:
                urls = default_ollama_urls(self._router)
                lists = await asyncio.gather(*(self._tags(url) for url in urls))
                self._defaults = [model for found in lists for model in found]
                self._defaults_until = self._clock() + self._ttl
        return self._defaults

    async def _tags(self, url: str) -> list[DefaultModel]:
        try:
            data = await self.get_json(f"{url}/api/tags")
            models = data.get("models") or []
            return [DefaultModel(url, m) for m in models if isinstance(m, dict) and m.get("name")]
        except (BackendAnswerError, GatewayError) as error:
            log.warning("default_ollama_list_failed", url=redact(url), error=str(error))
            return []

    # -- per-backend calls ----------------------------------------------------------------

    async def ollama_ps(self, url: str) -> list[dict[str, Any]]:
        """The models loaded at one Ollama; [] (logged) when it cannot be asked."""
        try:
            data = await self.get_json(f"{url}/api/ps")
        except (BackendAnswerError, GatewayError) as error:
            log.warning("ollama_ps_failed", url=redact(url), error=str(error))
            return []
        return [m for m in data.get("models") or [] if isinstance(m, dict)]

    async def ollama_show(self, attempt: Attempt, body: dict[str, Any]) -> dict[str, Any]:
        """The Ollama's own /api/show answer for the model this attempt serves."""
        config = attempt.config
        payload = {k: v for k, v in body.items() if k != "name"}
        payload["model"] = config.backend_model or config.model_name
        return await self.post_json(f"{config.endpoint_url.rstrip('/')}/api/show", payload)

    async def openai_model(self, attempt: Attempt) -> dict[str, Any] | None:
        """The server's /v1/models entry for the served model (None if it lists no match)."""
        config = attempt.config
        data = await self.get_json(f"{openai_root(config.endpoint_url)}/v1/models")
        entries = [e for e in data.get("data") or [] if isinstance(e, dict)]
        wanted = config.backend_model or (None if attempt.kind == "mlx" else config.model_name)
        if wanted is None:
            # mlx_lm.server lists its hub cache, then the model it was started with.
            return entries[-1] if entries else None
        return next((entry for entry in entries if entry.get("id") == wanted), None)

    # -- HTTP -----------------------------------------------------------------------------

    async def get_json(self, url: str) -> dict[str, Any]:
        return await self._call("GET", url, None)

    async def post_json(self, url: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", url, payload)

    async def _call(self, method: str, url: str, payload: dict[str, Any] | None) -> dict[str, Any]:
        """A JSON object from `url`; BackendAnswerError for an error status, GatewayError
        (502/504) when the backend cannot be reached or answers garbage."""
        try:
            data = None if payload is None else orjson.dumps(payload)
        except orjson.JSONEncodeError as error:  # e.g. a lone surrogate in a client's string
            raise GatewayError(400, f"body: cannot be passed on: {error}") from error
        headers = None if payload is None else {"Content-Type": "application/json"}
        try:
            async with self._client().request(
                method, url, data=data, headers=headers, timeout=self._timeout
            ) as response:
                body = await response.content.read(8 * 1024 * 1024)
                if response.status != 200:
                    raise BackendAnswerError(response.status, error_message(body))
        except TimeoutError as error:
            raise _unreachable(url, 504, "no answer in time") from error
        except aiohttp.ClientError as error:
            raise _unreachable(url, 502, str(error) or type(error).__name__) from error
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            raise _unreachable(url, 502, "answer is not a JSON object")
        return parsed

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return self._session


def _unreachable(url: str, status: int, why: str) -> GatewayError:
    return GatewayError(status, redact(f"backend at {url} could not be asked: {why}"))


def same_model(served: str, reported: str) -> bool:
    return canonical(served) == canonical(reported)


def claimed_names(names: Sequence[str]) -> set[str]:
    """Config names in both spellings (`x` and `x:latest`), to skip in the default lists."""
    return {spelling for name in names for spelling in (name, canonical(name))}
