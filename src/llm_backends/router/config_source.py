"""Where the router learns a model's backend config: an interface and the Admin API client.

Library mode asks the Admin API over HTTP; the gateway passes an in-process source over the
store. Both answer the config, enabled or not (the cache treats a disabled one as absent and
uses the default, as the guide says), `None` for "no config", and raise
`ConfigSourceUnavailable` when they cannot answer at all, which the cache turns into
stale-or-default serving.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable
from urllib.parse import quote

import aiohttp
from yarl import URL

from llm_backends.router.types import BackendConfig


class ConfigSourceUnavailable(Exception):
    """The source could not say whether a config exists (down, timeout, garbage answer)."""


@runtime_checkable
class ConfigSource(Protocol):
    async def get(self, model_name: str) -> BackendConfig | None:
        """The model's config (enabled or not), or None when there is none.

        Raises ConfigSourceUnavailable when the source can't answer.
        """
        ...


class HttpConfigSource:
    """`GET {admin_url}/api/llm-backends/model/{name}`: 200 is the config (`enabled` says
    whether it counts), 404 is "none"."""

    def __init__(
        self,
        admin_url: str,
        session: Callable[[], aiohttp.ClientSession],
        *,
        timeout: float,
        token: str | None = None,
    ) -> None:
        self._base = admin_url.rstrip("/") + "/api/llm-backends/model/"
        # The lookup is public; a token with llm_backends:secrets also gets the api_key.
        self._headers = {"Authorization": f"Bearer {token}"} if token else None
        # The router's pooled session, looked up per call: it is bound to the running loop.
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def url_for(self, model_name: str) -> str:
        return self._base + quote(model_name, safe="")

    async def get(self, model_name: str) -> BackendConfig | None:
        url = self.url_for(model_name)
        # encoded=True: yarl would otherwise turn the %3A of "phi3:mini" back into ":".
        request_url = URL(url, encoded=True)
        try:
            async with self._session().get(
                request_url, timeout=self._timeout, headers=self._headers
            ) as response:
                if response.status == 404:
                    return None
                if response.status != 200:
                    raise ConfigSourceUnavailable(f"GET {url} answered HTTP {response.status}")
                data = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise ConfigSourceUnavailable(f"GET {url} failed: {error!r}") from error
        try:
            return BackendConfig.from_mapping(data)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise ConfigSourceUnavailable(f"GET {url} returned a bad config: {data!r}") from error


def default_config(
    model_name: str,
    *,
    ollama_url: str,
    max_tokens: int,
    temperature: float,
    timeout_seconds: float,
) -> BackendConfig:
    """The config used when a model has none (or a disabled one): Ollama with the model's name."""
    return BackendConfig(
        model_name=model_name,
        backend_type="ollama",
        endpoint_url=ollama_url.rstrip("/"),
        max_tokens=max_tokens,
        temperature_default=temperature,
        timeout_seconds=timeout_seconds,
    )
