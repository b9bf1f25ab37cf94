"""Router errors that carry their cause: an open breaker names the failure that opened it
and when it is tried again; a model without an enabled config says the default Ollama was
used (message, log line), and its requests are not counted in the config table's stats."""

from __future__ import annotations

import re

import pytest
from structlog.testing import capture_logs

from llm_backends import BackendUnavailable
from tests.fakes.common import FakeServer
from tests.router.support import MODEL, DictSource


async def test_an_open_breaker_says_what_opened_it_and_when_it_retries(
    make_router, source: DictSource, fake_ollama: FakeServer, clock
) -> None:
    source.add(MODEL, "ollama", fake_ollama.url)
    fake_ollama.fail(503, "model runner crashed")
    router = make_router(config_source=source)
    for _ in range(3):
        with pytest.raises(BackendUnavailable):
            await router.generate(MODEL, "hi")
    clock.advance(12.5)
    with pytest.raises(BackendUnavailable) as caught:
        await router.generate(MODEL, "hi")
    assert re.fullmatch(
        r"circuit open after 3 consecutive failures \(the last: HTTP 503: model runner "
        r"crashed\); next probe in 17\.5s \(at \d\d:\d\d:\d\d UTC\) "
        rf"\(model='phi3:mini', backend='ollama', endpoint='{re.escape(fake_ollama.url)}'\)",
        str(caught.value),
    ), str(caught.value)


async def test_a_failure_on_the_default_route_says_no_config_was_found(
    make_router, source: DictSource, refused_url: str
) -> None:
    source.add("disabled-model", "openai", "http://127.0.0.1:1", enabled=False)
    router = make_router({"ollama_url": refused_url}, config_source=source)
    for model in ("mistyped-model", "disabled-model"):
        with capture_logs() as logs, pytest.raises(BackendUnavailable) as caught:
            await router.generate(model, "hi")
        message = str(caught.value)
        assert message.startswith("cannot reach backend: ")
        assert (
            f"; model '{model}' has no enabled config (none, or disabled), so it was sent to "
            f"the default Ollama at {refused_url} (OLLAMA_URL) (model='{model}', "
            f"backend='ollama', endpoint='{refused_url}')"
        ) in message
        assert caught.value.default_route is True
        (failed,) = [e for e in logs if e["event"] == "llm_request_failed"]
        assert failed["default_route"] is True
        assert not router.has_config(model)


async def test_a_configured_model_is_not_the_default_route(
    make_router, source: DictSource, fake_ollama: FakeServer, sink
) -> None:
    source.add(MODEL, "ollama", fake_ollama.url)
    router = make_router({"ollama_url": fake_ollama.url}, config_source=source, stats_sink=sink)
    assert not router.has_config(MODEL)  # never asked for yet: no lookup is made
    with capture_logs() as logs:
        await router.generate(MODEL, "hi")
        await router.generate("unconfigured", "hi")
    lines = [e for e in logs if e["event"] == "routing_llm_request"]
    assert [(e["model"], e["default_route"]) for e in lines] == [
        (MODEL, False),
        ("unconfigured", True),
    ]
    assert router.has_config(MODEL) and not router.has_config("unconfigured")
    # Only the configured model has a row to count in.
    assert [stats.model_name for stats in router.pending_stats()] == [MODEL]
