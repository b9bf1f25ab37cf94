"""The handle of one routed stream: its chunks plus what a gateway needs for its headers."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from llm_backends.router.types import Chunk


class RoutedStream:
    """An async iterator of `Chunk`s that also says which backend answered.

    `backend`, `endpoint` and `fallback_from` are set before the first chunk is returned, so
    a gateway can `first = await anext(stream)` and then write its response headers. `final`
    is the last chunk (`done=True`, with usage and finish_reason) once it has been seen.
    Close it (`await stream.aclose()`, or `contextlib.aclosing`) if you stop early.
    """

    __slots__ = (
        "_chunks",
        "backend",
        "endpoint",
        "fallback_from",
        "final",
        "max_tokens_capped",
        "model",
    )

    def __init__(self, model: str) -> None:
        self.model = model
        self.backend: str | None = None
        self.endpoint: str | None = None
        self.fallback_from: str | None = None
        self.final: Chunk | None = None
        #: The config's max_tokens when the request asked for more (set before the first chunk).
        self.max_tokens_capped: int | None = None
        self._chunks: AsyncGenerator[Chunk, None] | None = None

    def attach(self, chunks: AsyncGenerator[Chunk, None]) -> RoutedStream:
        self._chunks = chunks
        return self

    def __aiter__(self) -> RoutedStream:
        return self

    async def __anext__(self) -> Chunk:
        assert self._chunks is not None, "RoutedStream used before attach()"
        return await self._chunks.__anext__()

    async def aclose(self) -> None:
        if self._chunks is not None:
            await self._chunks.aclose()
