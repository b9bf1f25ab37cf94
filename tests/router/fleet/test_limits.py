"""Per-server concurrency limits: a bounded first-come queue, 429 when it overflows."""

from __future__ import annotations

import asyncio

from llm_backends.router.errors import ServerBusy
from llm_backends.router.types import ServerSpec
from tests.fakes.common import Gate
from tests.fakes.fleet import Trio

MODEL = "llama3:8b"


async def wait_queued(router, url: str, count: int) -> None:  # type: ignore[no-untyped-def]
    """Yield to the loop until `count` requests wait for `url` (no timers involved)."""
    slot = router.fleet.slots()[(MODEL, url)]
    async with asyncio.timeout(10):
        while len(slot.waiters) != count:  # noqa: ASYNC110 (sleep(0) yields; no timed wait)
            await asyncio.sleep(0)


async def test_limit_two_with_ten_clients(make_router, source, trio: Trio):  # type: ignore[no-untyped-def]
    fake, url = trio.fakes[1], trio.urls[1]
    gate = Gate()
    fake.configure(hold=gate)
    source.add(MODEL, "ollama", url, max_concurrency=2)
    router = make_router(config_source=source)
    tasks = [asyncio.create_task(router.generate(model=MODEL, prompt=f"q{i}")) for i in range(10)]
    await asyncio.to_thread(fake.state.wait_active, 2)
    await wait_queued(router, url, 8)
    # The first two arrived; the other eight wait in the router, not at the server.
    assert len(fake.bodies) == 2
    gate.open()
    results = await asyncio.gather(*tasks)
    assert [r["endpoint"] for r in results] == [url] * 10
    assert fake.state.max_active == 2
    # First come, first served: the server saw the prompts in the order they were sent.
    assert [b["prompt"] for b in fake.bodies] == [f"q{i}" for i in range(10)]


async def test_overflow_gets_429_with_retry_after(make_router, source, trio: Trio):  # type: ignore[no-untyped-def]
    fake, url = trio.fakes[1], trio.urls[1]
    gate = Gate()
    fake.configure(hold=gate)
    source.add(MODEL, "ollama", url, max_concurrency=2)
    router = make_router({"queue_max_waiting": 3}, config_source=source)
    tasks = [asyncio.create_task(router.generate(model=MODEL, prompt=f"q{i}")) for i in range(10)]
    await asyncio.to_thread(fake.state.wait_active, 2)
    await wait_queued(router, url, 3)
    gate.open()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    busy = [o for o in outcomes if isinstance(o, ServerBusy)]
    assert len(busy) == 5 and len(fake.bodies) == 5
    assert busy[0].http_status == 429 and busy[0].retry_after is not None
    assert "max_concurrency=2" in str(busy[0]) and "queue is full" in str(busy[0])


async def test_a_wait_longer_than_the_queue_timeout_is_429(make_router, source, trio: Trio):  # type: ignore[no-untyped-def]
    fake, url = trio.fakes[1], trio.urls[1]
    gate = Gate()
    fake.configure(hold=gate)
    source.add(MODEL, "ollama", url, max_concurrency=1)
    router = make_router({"queue_timeout_seconds": 0.05}, config_source=source)
    first = asyncio.create_task(router.generate(model=MODEL, prompt="first"))
    await asyncio.to_thread(fake.state.wait_active, 1)
    try:
        await router.generate(model=MODEL, prompt="second")
    except ServerBusy as error:
        assert "no place freed within 0.05s" in str(error)
    else:
        raise AssertionError("expected a 429")
    gate.open()
    assert (await first)["endpoint"] == url


async def test_a_caller_leaving_the_queue_frees_its_place(make_router, source, trio: Trio):  # type: ignore[no-untyped-def]
    fake, url = trio.fakes[1], trio.urls[1]
    gate = Gate()
    fake.configure(hold=gate)
    source.add(MODEL, "ollama", url, max_concurrency=1)
    router = make_router({"queue_max_waiting": 1}, config_source=source)
    first = asyncio.create_task(router.generate(model=MODEL, prompt="first"))
    await asyncio.to_thread(fake.state.wait_active, 1)
    leaver = asyncio.create_task(router.generate(model=MODEL, prompt="leaver"))
    await wait_queued(router, url, 1)
    leaver.cancel()  # what the gateway does when the client disconnects
    await asyncio.gather(leaver, return_exceptions=True)
    await wait_queued(router, url, 0)
    stayer = asyncio.create_task(router.generate(model=MODEL, prompt="stayer"))
    await wait_queued(router, url, 1)  # the queue of one had room again
    gate.open()
    await first
    assert (await stayer)["endpoint"] == url
    assert [b["prompt"] for b in fake.bodies] == ["first", "stayer"]
    assert router.fleet.slots()[(MODEL, url)].in_flight == 0


async def test_a_full_server_sends_the_rest_to_another_with_room(  # type: ignore[no-untyped-def]
    make_router, source, trio: Trio
):
    limited, other = trio.fakes[1], trio.fakes[2]
    gate = Gate()
    limited.configure(hold=gate)
    other.configure(hold=gate)
    source.add(
        MODEL,
        "ollama",
        trio.urls[1],
        max_concurrency=1,
        endpoints=(ServerSpec(trio.urls[2], 1, 4),),
    )
    router = make_router({"conversation_affinity": False}, config_source=source)
    tasks = [asyncio.create_task(router.generate(model=MODEL, prompt=f"q{i}")) for i in range(8)]
    await asyncio.to_thread(limited.state.wait_active, 1)
    await asyncio.to_thread(other.state.wait_active, 4)
    slots = router.fleet.slots()
    assert (
        len(slots[(MODEL, trio.urls[1])].waiters) + len(slots[(MODEL, trio.urls[2])].waiters) == 3
    )
    gate.open()
    results = await asyncio.gather(*tasks)
    assert limited.state.max_active == 1 and other.state.max_active == 4
    assert len(results) == 8
