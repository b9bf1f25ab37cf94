"""The contract every wire-protocol backend module implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar

from llm_backends.router.backends import _fanout, _http
from llm_backends.router.backends._http import DEFAULT_MAX_RESPONSE_BYTES
from llm_backends.router.transport import HttpPool
from llm_backends.router.types import BackendConfig, Chunk, Completion, CompletionRequest

if TYPE_CHECKING:  # not at run time: router.embeddings imports this package
    from llm_backends.router.embeddings import BackendEmbeddings, EmbeddingRequest


class Backend(ABC):
    """Speaks one inference server's HTTP protocol.

    A backend is stateless apart from the shared connection pool (`HttpPool`) it is given:
    the router owns the session, the breakers and the fallback policy. It turns transport and
    protocol failures into the typed errors of `llm_backends.router.errors`.
    """

    #: The `backend_type` value of the configs this class serves, e.g. "ollama".
    kind: ClassVar[str]
    #: The optional features it honours (names in `router.capabilities`); a request needing
    #: another is refused with a 400 before any call (`auto` skips to its next backend).
    capabilities: ClassVar[frozenset[str]] = frozenset()
    #: The server has an embeddings API (`embed`); the router tries only backends that do.
    embeds: ClassVar[bool] = False

    def __init__(
        self,
        client: HttpPool,
        connect_timeout: float = 3.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self.client = client
        self.connect_timeout = connect_timeout
        #: The largest body (or stream line) read from the server; more is an invalid answer.
        self.max_response_bytes = max_response_bytes

    def post_json(
        self,
        url: str,
        payload: dict[str, Any],
        config: BackendConfig,
        hops: tuple[str, ...] = (),
    ) -> Coroutine[Any, Any, bytes]:
        """POST with this backend's pool, timeouts and size limit; awaited, the 200 body.
        `hops` (the request's) go out as the loop-protection header. A plain function
        handing back `_http.post_json`'s coroutine: no coroutine of its own to resume."""
        return _http.post_json(
            self.client,
            url,
            payload,
            config,
            self.kind,
            self.connect_timeout,
            self.max_response_bytes,
            _http.request_headers(config, hops),
        )

    def stream_lines(
        self,
        url: str,
        payload: dict[str, Any],
        config: BackendConfig,
        hops: tuple[str, ...] = (),
    ) -> AsyncIterator[bytes]:
        """POST and yield the 200 body line by line, with the same settings as `post_json`."""
        return _http.stream_lines(
            self.client,
            url,
            payload,
            config,
            self.kind,
            self.connect_timeout,
            self.max_response_bytes,
            _http.request_headers(config, hops),
        )

    async def answer(self, config: BackendConfig, request: CompletionRequest) -> Completion:
        """`complete`, with n > 1 served as n concurrent calls by a backend without `n`
        (the router has already bounded n by MAX_FANOUT_CALLS)."""
        if request.n <= 1 or "n" in self.capabilities:
            return await self.complete(config, request)
        return await _fanout.complete_n(lambda r: self.complete(config, r), request)

    def stream_answer(
        self, config: BackendConfig, request: CompletionRequest
    ) -> AsyncIterator[Chunk]:
        """`stream`, with n > 1 served as n concurrent streams by a backend without `n`."""
        if request.n <= 1 or "n" in self.capabilities:
            return self.stream(config, request)
        return _fanout.stream_n(lambda r: self.stream(config, r), request)

    @abstractmethod
    async def complete(self, config: BackendConfig, request: CompletionRequest) -> Completion:
        """One whole answer, within `config.timeout_seconds`."""

    @abstractmethod
    def stream(self, config: BackendConfig, request: CompletionRequest) -> AsyncIterator[Chunk]:
        """Chunks as the backend sends them; the last has `done=True`.

        `config.timeout_seconds` bounds the wait for each chunk, not the whole stream.
        """

    async def embed(self, config: BackendConfig, request: EmbeddingRequest) -> BackendEmbeddings:
        """One embedding per input (only classes with `embeds = True` are asked)."""
        raise NotImplementedError(f"backend {self.kind!r} has no embeddings API")
