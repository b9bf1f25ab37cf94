"""`GET /api/llm-backends/changes`: the change feed library routers follow (a long poll).

It carries model names and versions, never configs, so like the lookup it needs no token.
An answer comes at once when something changed after `since`; otherwise the request is held
until this process learns of a change (its own write, a NOTIFY or the version poll: all of
them arrive through `ConfigChanges`) or until `timeout`. No database connection is held while
waiting. Declared on its own router, included before the Admin API's `/{backend_id}` routes
(which would otherwise take "changes" for an id).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from types import FrameType
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from prometheus_client import CollectorRegistry, Gauge
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from llm_backends.gateway.disconnect import (
    CLIENT_CLOSED,
    CancelOnDisconnect,
    ClientDisconnected,
    DisconnectWatch,
)
from llm_backends.store.changes import ChangeLog, changes_since, current_version
from llm_backends.store.events import ConfigChanges

router = APIRouter(prefix="/api/llm-backends", tags=["llm-backends"])

DEFAULT_TIMEOUT_SECONDS = 30.0
MAX_TIMEOUT_SECONDS = 60.0
#: Versions are 64-bit on every database; a larger `since` can't name one.
MAX_VERSION = 2**63 - 1
#: Long polls held at once per process; more get 503 + Retry-After (memory stays bounded).
MAX_WAITERS = 2048


class ChangeOut(BaseModel):
    #: null: anything may have changed at this version (reload every model).
    model_name: str | None
    version: int


class ChangesOut(BaseModel):
    """The current config version and what changed after `since`, oldest first. When the
    versions `since+1..version` are not all listed (the log was trimmed, or the store is
    older than `since`), reload every model."""

    version: int
    changes: list[ChangeOut]


class ChangeFeed:
    """Answers long polls; woken by every publish on `ConfigChanges` in this process."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], changes: ConfigChanges) -> None:
        self._sessions = sessions
        self._wake = asyncio.Event()
        self._waiters = 0
        self._closed = False
        #: Ends a held poll when its client disconnects.
        self.disconnects = DisconnectWatch()
        changes.subscribe(self._on_change)

    def _on_change(self, _model_name: str | None) -> None:
        self._wake.set()
        self._wake = asyncio.Event()

    @property
    def held(self) -> int:
        """Polls held now."""
        return self._waiters

    def close(self) -> None:
        """Answer every held poll now (shutdown must not wait for them)."""
        self._closed = True
        self._wake.set()

    async def answer(self, since: int | None, hold_seconds: float) -> ChangesOut:
        if since is None:  # "where are we?": a follower's first call
            async with self._sessions() as session:
                return ChangesOut(version=await current_version(session), changes=[])
        if self._waiters >= MAX_WAITERS:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                f"Too many change-feed polls held ({MAX_WAITERS}), try again",
                headers={"Retry-After": "5"},
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + hold_seconds
        self._waiters += 1
        try:
            while True:
                wake = self._wake  # taken before the read: a change during it still wakes us
                async with self._sessions() as session:
                    change_log = await changes_since(session, since)
                remaining = deadline - loop.time()
                if change_log.version != since or remaining <= 0 or self._closed:
                    return _render(change_log)
                try:
                    async with asyncio.timeout(remaining):
                        await wake.wait()
                except TimeoutError:
                    pass
        finally:
            self._waiters -= 1


def export_held_polls(feed: ChangeFeed, registry: CollectorRegistry) -> None:
    """`llm_config_feed_polls_held` on /metrics: the followers (library routers) waiting on
    this process now, read at scrape time."""
    Gauge(
        "llm_config_feed_polls_held",
        "Change-feed long polls held by this process (library routers following its changes).",
        registry=registry,
    ).set_function(lambda: feed.held)


def release_on_shutdown_signal(feed: ChangeFeed) -> Callable[[], None]:
    """Answer held polls as soon as SIGTERM/SIGINT arrives, then call the handler that was
    there (uvicorn's). Uvicorn waits for requests in flight before it runs the lifespan's
    shutdown, so without this every held poll would delay the exit by up to its timeout.
    Returns a function that puts the previous handlers back. A no-op off the main thread.
    """
    loop = asyncio.get_running_loop()
    previous: dict[int, Any] = {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(feed.close)
        handler = previous.get(signum)
        if callable(handler):
            handler(signum, frame)

    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            before = signal.getsignal(sig)
            if callable(before):
                previous[sig] = before
                signal.signal(sig, on_signal)
    except ValueError:  # not the main thread (an app served by a test's thread)
        pass

    def restore() -> None:
        for sig, handler in previous.items():
            if signal.getsignal(sig) is on_signal:
                signal.signal(sig, handler)

    return restore


def _render(change_log: ChangeLog) -> ChangesOut:
    return ChangesOut(
        version=change_log.version,
        changes=[
            ChangeOut(model_name=change.model_name, version=change.version)
            for change in change_log.changes
        ],
    )


@router.get(
    "/changes",
    response_model=ChangesOut,
    summary="Change feed: model names changed after a config version (long poll, no auth)",
)
async def get_changes(
    request: Request,
    since: Annotated[
        int | None,
        Query(
            ge=0,
            le=MAX_VERSION,
            description="Last version seen; omitted: answer the current version now.",
        ),
    ] = None,
    timeout: Annotated[  # noqa: ASYNC109 (the API's query parameter, not an await timeout)
        float,
        Query(ge=0, le=MAX_TIMEOUT_SECONDS, description="Seconds to hold when nothing changed."),
    ] = DEFAULT_TIMEOUT_SECONDS,
) -> ChangesOut | Response:
    feed: ChangeFeed = request.app.state.change_feed
    try:
        # A follower that went away (a closed library router, a killed service) would hold
        # its place among MAX_WAITERS, and the server's shutdown, until its timeout.
        async with CancelOnDisconnect(request.receive, feed.disconnects):
            return await feed.answer(since, timeout)
    except ClientDisconnected:
        return Response(status_code=CLIENT_CLOSED)
