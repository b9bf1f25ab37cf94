"""StatsReporter aggregation and batching, and the router's use of it."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest
from structlog.testing import capture_logs

from llm_backends import BackendUnavailable
from llm_backends.router.stats import ModelStats, StatsReporter
from tests.fakes.common import FakeServer
from tests.router.support import (
    LEAVE_DEFAULT,
    MODEL,
    DictSource,
    FakeAdmin,
    RecordingSink,
    token,
)


async def test_aggregates_per_model(sink: RecordingSink) -> None:
    reporter = StatsReporter(sink, interval=3600)
    reporter.record(MODEL, 100.0, 50.0, False)
    reporter.record(MODEL, 300.0, None, True)
    reporter.record("other", 10.0, 20.0, False)
    assert await reporter.flush()
    assert len(sink.batches) == 1
    by_model = {stats.model_name: stats for stats in sink.batches[0]}
    assert by_model[MODEL] == ModelStats(MODEL, 2, 1, 400.0, 50.0, 1)
    assert by_model["other"] == ModelStats("other", 1, 0, 10.0, 20.0, 1)
    assert reporter.pending() == []
    await reporter.close()


async def test_flush_with_nothing_pending_reports_nothing(sink: RecordingSink) -> None:
    reporter = StatsReporter(sink, interval=3600)
    assert await reporter.flush()
    assert sink.batches == []


async def test_failed_report_merges_counts_back(sink: RecordingSink) -> None:
    reporter = StatsReporter(sink, interval=3600)
    reporter.record(MODEL, 100.0, 10.0, False)
    sink.fail = True
    with capture_logs() as logs:
        assert not await reporter.flush()
    assert [e["event"] for e in logs] == ["llm_stats_report_failed"]
    reporter.record(MODEL, 50.0, None, True)
    sink.fail = False
    assert await reporter.flush()
    assert sink.batches == [[ModelStats(MODEL, 2, 1, 150.0, 10.0, 1)]]
    await reporter.close()


async def test_timer_reports_one_batch_per_interval(sink: RecordingSink) -> None:
    reporter = StatsReporter(sink, interval=0.01)
    for _ in range(100):
        reporter.record(MODEL, 1.0, None, False)
    async with asyncio.timeout(5):
        await sink.reported.wait()
    assert len(sink.batches) == 1
    assert sink.batches[0][0].requests == 100
    await reporter.close()


async def test_close_reports_what_is_pending(sink: RecordingSink) -> None:
    reporter = StatsReporter(sink, interval=3600)
    reporter.record(MODEL, 1.0, None, False)
    assert await reporter.close()
    assert sink.batches[0][0].requests == 1


async def test_many_calls_make_one_report(
    make_router, source: DictSource, fake_ollama: FakeServer, sink: RecordingSink
) -> None:
    source.add(MODEL, "ollama", fake_ollama.url)
    router = make_router(config_source=source, stats_sink=sink)
    for _ in range(20):
        await router.generate(MODEL, "hi")
    fake_ollama.fail(500)
    with pytest.raises(BackendUnavailable):
        await router.generate(MODEL, "hi")
    assert sink.batches == []  # nothing is written per request
    assert await router.flush_stats()
    assert len(sink.batches) == 1
    (stats,) = sink.batches[0]
    assert (stats.model_name, stats.requests, stats.errors) == (MODEL, 21, 1)
    assert stats.tokens_per_sec_samples == 20
    assert stats.tokens_per_sec_sum == pytest.approx(20 * 50.0)  # the fake's eval timings
    assert stats.latency_ms_sum > 0


async def test_failing_sink_never_fails_generate(
    make_router, source: DictSource, fake_ollama: FakeServer, sink: RecordingSink
) -> None:
    source.add(MODEL, "ollama", fake_ollama.url)
    sink.fail = True
    router = make_router({"metrics_report_interval": 0.001}, config_source=source, stats_sink=sink)
    for _ in range(5):
        result = await router.generate(MODEL, "hi")
        assert result["response"]
    assert not await router.flush_stats()
    sink.fail = False
    assert await router.flush_stats()
    assert sum(stats.requests for batch in sink.batches for stats in batch) == 5


async def test_http_sink_posts_to_admin_api_with_token(
    make_router, fake_admin: FakeAdmin, fake_ollama: FakeServer
) -> None:
    fake_admin.add(MODEL, "ollama", fake_ollama.url)
    secret = token()
    router = make_router(
        {"admin_api_url": fake_admin.url, "admin_api_token": secret},
        stats_sink=LEAVE_DEFAULT,
    )
    await router.generate(MODEL, "hi")
    await router.generate(MODEL, "hi")
    assert fake_admin.state.reports == []
    assert await router.flush_stats()
    ((headers, body),) = fake_admin.state.reports
    assert headers["authorization"] == f"Bearer {secret}"
    (row,) = body["stats"]
    assert row["model_name"] == MODEL
    assert row["requests"] == 2
    assert row["errors"] == 0
    assert row["tokens_per_sec_samples"] == 2
    assert set(row) == {
        "model_name",
        "requests",
        "errors",
        "latency_ms_sum",
        "tokens_per_sec_sum",
        "tokens_per_sec_samples",
        "endpoint",
    }
    assert row["endpoint"] == fake_ollama.url  # the server that answered


async def test_http_sink_rejected_report_is_kept(
    make_router, fake_admin: FakeAdmin, fake_ollama: FakeServer
) -> None:
    fake_admin.add(MODEL, "ollama", fake_ollama.url)
    fake_admin.state.metrics_status = 503
    router = make_router(
        {"admin_api_url": fake_admin.url, "admin_api_token": token()},
        stats_sink=LEAVE_DEFAULT,
    )
    await router.generate(MODEL, "hi")
    assert not await router.flush_stats()
    assert router.pending_stats()[0].requests == 1


async def test_without_token_stats_are_not_reported(
    make_router, fake_admin: FakeAdmin, fake_ollama: FakeServer
) -> None:
    fake_admin.add(MODEL, "ollama", fake_ollama.url)
    with capture_logs() as logs:
        router = make_router({"admin_api_url": fake_admin.url}, stats_sink=LEAVE_DEFAULT)
        await router.generate(MODEL, "hi")
        await router.generate(MODEL, "hi")
        assert await router.flush_stats()
    assert [e["event"] for e in logs].count("llm_stats_reporting_disabled") == 1
    assert fake_admin.state.reports == []
    await router.close()
    assert fake_admin.state.reports == []


async def test_abandoned_stream_counts_as_one_request(
    make_router, source: DictSource, fake_ollama: FakeServer, sink: RecordingSink
) -> None:
    source.add(MODEL, "ollama", fake_ollama.url)
    fake_ollama.configure(chunks=5)
    router = make_router(config_source=source, stats_sink=sink)
    async with aclosing(router.stream_chunks(MODEL, "hi")) as stream:
        await anext(stream)
    async for _ in router.stream(MODEL, "hi"):
        pass
    stats = router.pending_stats()
    assert [(s.model_name, s.requests, s.errors) for s in stats] == [(MODEL, 2, 0)]
