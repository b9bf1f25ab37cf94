"""n > 1 for a backend that ignores `n` (Ollama, mlx_lm.server): n calls of the same request,
merged into one answer with n choices. Whole answers are gathered; streams are read
concurrently and their chunks passed on as they come, each tagged with its choice's index.

Not a backend module (the underscore keeps the registry away). The router has already
bounded n (MAX_FANOUT_CALLS), so this never starts more than that many calls.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress

from llm_backends.router.types import Choice, Chunk, Completion, CompletionRequest


async def complete_n(
    complete: Callable[[CompletionRequest], Awaitable[Completion]], request: CompletionRequest
) -> Completion:
    single = dataclasses.replace(request, n=1)
    answers = await asyncio.gather(*(complete(single) for _ in range(request.n)))
    return merge_choices(list(answers))


def merge_choices(answers: list[Completion]) -> Completion:
    """n single answers -> one answer with n choices; usage is summed (prompt counted once)."""
    first = answers[0]
    choices = tuple(
        Choice(
            index=index,
            text=answer.text,
            finish_reason=answer.finish_reason,
            tool_calls=answer.tool_calls,
            reasoning=answer.reasoning,
            logprobs=answer.logprobs,
        )
        for index, answer in enumerate(answers)
    )
    counts = [a.completion_tokens for a in answers if a.completion_tokens is not None]
    return dataclasses.replace(
        first, completion_tokens=sum(counts) if counts else None, choices=choices
    )


async def stream_n(
    stream: Callable[[CompletionRequest], AsyncIterator[Chunk]], request: CompletionRequest
) -> AsyncIterator[Chunk]:
    """The chunks of n streams as they arrive (index = the stream's), then one done chunk
    with the first stream's finish reason and prompt count and the summed completion count.
    A failing stream fails the whole; closing this closes every stream."""
    single = dataclasses.replace(request, n=1)
    queue: asyncio.Queue[tuple[int, Chunk | BaseException | None]] = asyncio.Queue()

    async def pump(index: int) -> None:
        chunks = stream(single)
        try:
            async for chunk in chunks:
                await queue.put((index, chunk))
            await queue.put((index, None))
        except Exception as error:  # handed to the reader, which raises it
            await queue.put((index, error))
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]

    tasks = [asyncio.create_task(pump(i)) for i in range(request.n)]
    finals: dict[int, Chunk] = {}
    running = request.n
    try:
        while running:
            index, item = await queue.get()
            if item is None:
                running -= 1
            elif isinstance(item, BaseException):
                raise item
            elif item.done:
                finals[index] = item
                if item.text or item.reasoning or item.tool_calls:
                    yield dataclasses.replace(item, done=False, finish_reason=None, index=index)
            else:
                item.index = index
                yield item
        first = finals.get(0)
        counts = [c.completion_tokens for c in finals.values() if c.completion_tokens is not None]
        yield Chunk(
            text="",
            done=True,
            finish_reason=first.finish_reason if first else "stop",
            prompt_tokens=first.prompt_tokens if first else None,
            completion_tokens=sum(counts) if counts else None,
        )
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task
