"""A library router follows the Admin API's change feed, so a config change reaches it in
well under a second instead of after its cache TTL.

One background task per event loop long-polls `GET {admin}/api/llm-backends/changes?since=V`
and drops exactly the models named in the answer (the next call for one waits for its new
config, fetched at once). When the versions since V are not all listed (the log was trimmed,
or the store was replaced), every model is dropped. Nothing is missed across a lost
connection: the feed is a log, so the next poll asks for everything after V.

When the feed is unreachable the task retries with backoff, and the cache's TTL (served
stale-while-revalidate) bounds how stale a config can get, as before.

The task lives in the router's loop: `asyncio.run` cancels it with every other task when the
script's main coroutine returns, so a script never waits for it, and `LLMRouter.close()`
stops it. A new loop (the next `asyncio.run`) starts a new task that resumes from V.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Protocol

import aiohttp
import structlog

log = structlog.get_logger("llm_backends.router")

#: Seconds the feed may hold one poll (the server caps it at 60).
POLL_TIMEOUT_SECONDS = 25.0
#: Retry delays after a failed poll: doubling from the first to the last, with jitter.
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
#: An answer "nothing changed" long before the poll's timeout (a server shutting down
#: releases its polls) is followed by this pause, so a follower never spins.
MIN_QUIET_POLL_SECONDS = 1.0


class Invalidator(Protocol):
    """What the follower needs of the router's cache (a RouteCache)."""

    def invalidate(self, model: str | None = None) -> None: ...

    def revalidate(self, model: str | None = None) -> None: ...


class ChangeFollower:
    """Long-polls the change feed in the background of the loop the router runs in."""

    def __init__(
        self,
        admin_url: str,
        session: Callable[[], aiohttp.ClientSession],
        cache: Invalidator,
        *,
        fetch_timeout: float,
        poll_timeout: float = POLL_TIMEOUT_SECONDS,
    ) -> None:
        self._url = admin_url.rstrip("/") + "/api/llm-backends/changes"
        self._session = session
        self._cache = cache
        self._fetch_timeout = fetch_timeout
        self._poll_timeout = poll_timeout
        #: The last version applied; None until the feed first answered.
        self.version: int | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Follow in `loop` (the router's current one); a task of a previous loop is gone."""
        if self._task is not None and self._task.get_loop() is loop and not self._task.done():
            return
        self._task = loop.create_task(self._follow(), name="llm-router-change-follower")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None or task.done():
            return
        task.cancel()
        if task.get_loop() is asyncio.get_running_loop():
            await asyncio.gather(task, return_exceptions=True)

    async def _follow(self) -> None:
        delay = BACKOFF_FIRST_SECONDS
        failing = False
        while True:
            asked_at = asyncio.get_running_loop().time()
            try:
                changed = await self.poll_once()
            except Exception as error:  # unreachable, garbage, or a bug: retry
                if not failing:
                    log.warning(
                        "config_change_feed_unreachable",
                        url=self._url,
                        error=f"{type(error).__name__}: {error}",
                        fallback="cache TTL",
                    )
                failing = True
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, BACKOFF_MAX_SECONDS)
                continue
            if failing:
                log.info("config_change_feed_recovered", url=self._url, version=self.version)
            failing, delay = False, BACKOFF_FIRST_SECONDS
            quick = asyncio.get_running_loop().time() - asked_at < MIN_QUIET_POLL_SECONDS
            if not changed and quick:
                await asyncio.sleep(MIN_QUIET_POLL_SECONDS)

    async def poll_once(self) -> bool:
        """One poll (held up to the poll timeout); False when it brought nothing new."""
        since = self.version
        params = {} if since is None else {"since": str(since), "timeout": str(self._poll_timeout)}
        timeout = aiohttp.ClientTimeout(total=self._poll_timeout + self._fetch_timeout + 5)
        async with self._session().get(self._url, params=params, timeout=timeout) as response:
            if response.status != 200:
                raise aiohttp.ClientResponseError(
                    response.request_info, (), status=response.status, message=response.reason
                )
            data = await response.json(content_type=None)
        version = int(data["version"])
        changes = [(_name(c["model_name"]), int(c["version"])) for c in data["changes"]]
        self.version = version
        if since is None:
            # Configs cached before this first answer may predate changes it won't list.
            self._cache.revalidate()
            return True  # not a quiet poll: go on at once
        return self.apply(since, version, changes)

    def apply(self, since: int, version: int, changes: list[tuple[str | None, int]]) -> bool:
        """Drop what changed after `since`; everything when the answer can't say."""
        if version == since:
            return False
        listed = {v for _, v in changes}
        complete = version > since and all(v in listed for v in range(since + 1, version + 1))
        if not complete or any(name is None for name, _ in changes):
            log.info("config_changes_reload_all", since=since, version=version)
            self._cache.invalidate()
            return True
        for name, _ in changes:
            self._cache.invalidate(name)
        log.debug("config_changes_applied", models=sorted({n for n, _ in changes if n}))
        return True


def _name(value: object) -> str | None:
    return None if value is None else str(value)
