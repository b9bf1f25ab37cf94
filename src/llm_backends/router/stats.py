"""Per-model request statistics, aggregated in memory and reported in batches.

Recording is a few additions on the hot path; a report goes out at most once per interval, in
a background task, so a slow or failing sink never delays or fails a generate call.

A failed report is logged and its counts are merged back into the next batch: memory stays
bounded (one row per model name) and nothing is lost while the Admin API is briefly down. The
price is a possible double count when a report failed after the server had applied it (e.g. a
timeout on the response); for dashboards that is the better error than silently losing data.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import aiohttp
import structlog

log = structlog.get_logger("llm_backends.router")


@dataclass(slots=True)
class ModelStats:
    """Counts for one model name and the server that answered, since the last report."""

    model_name: str
    requests: int = 0
    errors: int = 0
    latency_ms_sum: float = 0.0
    tokens_per_sec_sum: float = 0.0
    tokens_per_sec_samples: int = 0
    #: The server that answered (or failed last); a fleet model has one row per server.
    endpoint: str | None = None

    def merge(self, other: ModelStats) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.latency_ms_sum += other.latency_ms_sum
        self.tokens_per_sec_sum += other.tokens_per_sec_sum
        self.tokens_per_sec_samples += other.tokens_per_sec_samples

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class StatsSink(Protocol):
    async def report(self, batch: list[ModelStats]) -> None:
        """Store one batch (one row per model). Raising means "not stored"."""
        ...


class StatsReportFailed(Exception):
    """The sink did not accept a batch."""


class HttpStatsSink:
    """`POST {admin_url}/api/llm-backends/metrics` with the bearer token (library mode)."""

    def __init__(
        self,
        admin_url: str,
        token: str,
        session: Callable[[], aiohttp.ClientSession],
        *,
        timeout: float,
    ) -> None:
        self.url = admin_url.rstrip("/") + "/api/llm-backends/metrics"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session = session
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def report(self, batch: list[ModelStats]) -> None:
        body = {"stats": [stats.as_dict() for stats in batch]}
        try:
            async with self._session().post(
                self.url, json=body, headers=self._headers, timeout=self._timeout
            ) as response:
                if response.status >= 300:
                    text = await response.text()
                    raise StatsReportFailed(
                        f"POST {self.url} answered HTTP {response.status}: {text[:200]}"
                    )
        except (aiohttp.ClientError, TimeoutError) as error:
            raise StatsReportFailed(f"POST {self.url} failed: {error!r}") from error


class StatsReporter:
    """Aggregates per model and reports through a sink every `interval` seconds.

    The first record after a report arms one timer on the running loop; when it fires, the
    whole aggregate goes out as one batch. `flush()` reports at once.
    """

    def __init__(self, sink: StatsSink, *, interval: float) -> None:
        self.sink = sink
        self._interval = interval
        #: model -> endpoint -> counts (two dict lookups: no key tuple made per request).
        self._pending: dict[str, dict[str | None, ModelStats]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def record(
        self,
        model: str,
        latency_ms: float,
        tokens_per_sec: float | None,
        error: bool,
        endpoint: str | None = None,
    ) -> None:
        rows = self._pending.get(model)
        if rows is None:
            rows = self._pending[model] = {}
        stats = rows.get(endpoint)
        if stats is None:
            stats = rows[endpoint] = ModelStats(model, endpoint=endpoint)
        stats.requests += 1
        stats.latency_ms_sum += latency_ms
        if error:
            stats.errors += 1
        if tokens_per_sec is not None:
            stats.tokens_per_sec_sum += tokens_per_sec
            stats.tokens_per_sec_samples += 1
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._on_timer)

    def pending(self) -> list[ModelStats]:
        """A copy of the not yet reported counts."""
        return [ModelStats(**s.as_dict()) for rows in self._pending.values() for s in rows.values()]

    def detach(self) -> None:
        """Forget the timer of a previous event loop (the counts stay)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def flush(self) -> bool:
        """Report everything pending now; False when the sink failed (counts merged back)."""
        self.detach()
        if not self._pending:
            return True
        batch = [stats for rows in self._pending.values() for stats in rows.values()]
        self._pending = {}
        try:
            await self.sink.report(batch)
        except asyncio.CancelledError:
            self._merge_back(batch)
            raise
        except Exception as error:  # any sink, any failure: log it, keep the counts
            self._merge_back(batch)
            log.warning("llm_stats_report_failed", error=str(error), models=len(batch))
            return False
        return True

    async def close(self) -> bool:
        """Stop background reports (their counts merge back) and report what is pending."""
        self.detach()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return await self.flush()

    def _on_timer(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self._report_in_background())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _report_in_background(self) -> None:
        if not await self.flush() and self._timer is None:
            # Retry the merged-back counts next interval even if no request comes.
            self._timer = asyncio.get_running_loop().call_later(self._interval, self._on_timer)

    def _merge_back(self, batch: list[ModelStats]) -> None:
        for stats in batch:
            rows = self._pending.setdefault(stats.model_name, {})
            current = rows.get(stats.endpoint)
            if current is None:
                rows[stats.endpoint] = stats
            else:
                current.merge(stats)
