"""CancelOnDisconnect over one shared DisconnectWatch: a guard is watched only once it has
waited WATCH_AFTER, and a later guard is still watched after an earlier one has left."""

from __future__ import annotations

import asyncio

import pytest

from llm_backends.gateway.disconnect import CancelOnDisconnect, ClientDisconnected, DisconnectWatch


class Receive:
    """ASGI `receive` after the body: `http.disconnect` once the client has gone."""

    def __init__(self, gone: bool) -> None:
        self.gone = gone
        self.calls = 0
        self._never = asyncio.get_running_loop().create_future()

    async def __call__(self) -> dict[str, str]:
        self.calls += 1
        if self.gone:
            return {"type": "http.disconnect"}
        return await self._never


async def test_a_quick_wait_is_never_watched() -> None:
    watch = DisconnectWatch()
    receive = Receive(gone=True)
    async with CancelOnDisconnect(receive, watch):
        await asyncio.sleep(0)
    assert receive.calls == 0


async def test_a_later_guard_is_cancelled_when_its_client_leaves() -> None:
    watch = DisconnectWatch()
    quick = Receive(gone=True)
    async with CancelOnDisconnect(quick, watch):
        pass  # leaves at once: the shared timer must still reach the next guard

    gone = Receive(gone=True)
    backend = asyncio.get_running_loop().create_future()  # a backend that never answers

    async def wait() -> None:
        async with CancelOnDisconnect(gone, watch):
            await backend

    with pytest.raises(ClientDisconnected):
        await asyncio.wait_for(wait(), timeout=10)
    assert quick.calls == 0 and gone.calls == 1


async def test_several_waiting_guards_are_each_watched() -> None:
    watch = DisconnectWatch()
    staying = Receive(gone=False)
    gone = [Receive(gone=True) for _ in range(3)]
    answered = asyncio.Event()  # a backend that answers once told to

    async def wait(receive: Receive) -> str:
        try:
            async with CancelOnDisconnect(receive, watch):
                await answered.wait()
        except ClientDisconnected:
            return "disconnected"
        return "answered"

    waits = [asyncio.ensure_future(wait(receive)) for receive in gone]
    kept = asyncio.ensure_future(wait(staying))
    assert await asyncio.wait_for(asyncio.gather(*waits), timeout=10) == ["disconnected"] * 3
    assert not kept.done()
    answered.set()
    assert await kept == "answered"
