"""llm-backends' JSON log lines: what a line holds, when it is rendered and written, and what
a library user gets without configuring anything."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from llm_backends.logs import DRAIN_BATCH, DRAIN_DELAY, JsonLines, configure_logging

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class RecordingRaw(io.RawIOBase):
    """The raw file under a BufferedWriter: records each write(2) the buffer makes."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes.append(bytes(data))
        return len(data)

    def lines(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in b"".join(self.writes).splitlines()]


@pytest.fixture
def raw() -> Iterator[RecordingRaw]:
    """structlog configured as `llm-backends serve` does, onto a recorded buffered stream;
    the previous configuration comes back afterwards."""
    saved = structlog.get_config()
    recorder = RecordingRaw()
    configure_logging(
        "INFO",
        stdlib=False,
        stream=io.BufferedWriter(recorder, 64 * 1024),
        flush_interval=3600,  # the timer never fires during a test: flushes are explicit
    )
    yield recorder
    factory = structlog.get_config()["logger_factory"]
    if isinstance(factory, JsonLines):
        factory.close()
    structlog.configure(**saved)


def test_a_line_is_json_with_level_utc_time_and_the_fields(raw: RecordingRaw) -> None:
    log = structlog.get_logger("t")
    log.info("routing_llm_request", model="phi3:mini", backend="ollama", duration_ms=1.5)
    log.debug("not_at_info")
    log.warning("flushes", n=1)
    first, second = raw.lines()
    assert first["event"] == "routing_llm_request" and first["level"] == "info"
    assert (first["model"], first["backend"], first["duration_ms"]) == ("phi3:mini", "ollama", 1.5)
    assert ISO_UTC.match(str(first["timestamp"]))
    assert second["level"] == "warning" and second["n"] == 1


def test_secrets_are_redacted_by_key_and_by_value(raw: RecordingRaw) -> None:
    log = structlog.get_logger("t")
    log.warning(
        "x",
        token="llmb_abc",
        api_key="k",
        header="Bearer abc.def",
        note="used llmb_0123456789abcdef here",
        max_tokens=5,
    )
    (line,) = raw.lines()
    assert line["token"] == "[redacted]" and line["api_key"] == "[redacted]"
    assert line["header"] == "[redacted]"
    assert line["note"] == "used [redacted] here"
    assert line["max_tokens"] == 5
    assert b"llmb_" not in b"".join(raw.writes) and b"abc.def" not in b"".join(raw.writes)


@pytest.mark.parametrize("scheme", ["BEARER", "bEaReR"])
@pytest.mark.parametrize("level", ["info", "warning"])
def test_a_bearer_token_in_any_case_is_redacted(raw: RecordingRaw, scheme: str, level: str) -> None:
    getattr(structlog.get_logger("t"), level)("x", model=f"{scheme} abc.def")
    structlog.get_logger("t").warning("flush")  # renders whatever the info line left queued
    line = raw.lines()[0]
    assert line["model"] == "[redacted]"
    assert b"abc.def" not in b"".join(raw.writes)


def test_a_request_line_keeps_its_capped_limit_and_the_callers_bound_context(
    raw: RecordingRaw,
) -> None:
    """`max_tokens_capped` merely contains "token"; contextvars and bound values still reach
    the line through the fast `info` path; a secret inside a plain line is still caught."""
    log = structlog.get_logger("t")
    structlog.contextvars.bind_contextvars(request_id="r1")
    try:
        log.info("routing_llm_request", max_tokens_capped=16, model="m")
        log.bind(user="u").info("bound", n=1)
        log.info("secret", model="Bearer abc.def")
    finally:
        structlog.contextvars.clear_contextvars()
    log.info("after", model="m")
    log.warning("flush")
    first, bound, secret, after, _ = raw.lines()
    assert first["max_tokens_capped"] == 16 and first["request_id"] == "r1"
    assert (first["level"], first["model"]) == ("info", "m")
    assert ISO_UTC.match(str(first["timestamp"]))
    assert (bound["user"], bound["n"], bound["request_id"]) == ("u", 1, "r1")
    assert secret["model"] == "[redacted]"
    assert "request_id" not in after


def test_an_exception_is_rendered_with_its_traceback(raw: RecordingRaw) -> None:
    log = structlog.get_logger("t")
    try:
        raise ValueError("bad value")
    except ValueError:
        log.exception("failed")
    (line,) = raw.lines()
    assert line["level"] == "error"
    assert "ValueError: bad value" in str(line["exception"])


async def test_in_a_loop_a_full_batch_is_rendered_after_the_current_step_in_order(
    raw: RecordingRaw,
) -> None:
    log = structlog.get_logger("t")
    for n in range(DRAIN_BATCH):
        log.info("line", n=n)
    factory = structlog.get_config()["logger_factory"]
    assert isinstance(factory, JsonLines)
    factory.flush()
    assert raw.writes == []  # queued: nothing rendered before this step yields
    await asyncio.sleep(0)  # one loop iteration: the batch's drain callback runs
    factory.flush()
    assert [line["n"] for line in raw.lines()] == list(range(DRAIN_BATCH))


async def test_in_a_loop_fewer_lines_are_rendered_by_one_timer_in_order(
    raw: RecordingRaw, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lines short of a batch wait for one timer, armed by the first of them, DRAIN_DELAY
    seconds ahead (recorded here, and fired by hand: no waiting in the test)."""
    loop = asyncio.get_running_loop()
    timers: list[tuple[float, Any, tuple[Any, ...]]] = []

    def record(delay: float, callback: Any, *args: Any) -> None:
        timers.append((delay, callback, args))

    monkeypatch.setattr(loop, "call_later", record)
    log = structlog.get_logger("t")
    log.info("first")
    await asyncio.sleep(0)
    log.info("second")
    await asyncio.sleep(0)
    factory = structlog.get_config()["logger_factory"]
    assert isinstance(factory, JsonLines)
    factory.flush()
    assert raw.writes == []  # both still queued, after the steps that logged them
    assert [delay for delay, _, _ in timers] == [DRAIN_DELAY]
    _, fire, args = timers[0]
    fire(*args)
    factory.flush()
    assert [line["event"] for line in raw.lines()] == ["first", "second"]


def test_a_line_logged_after_a_loop_ended_is_written_at_once(raw: RecordingRaw) -> None:
    """The timer armed in a loop that has ended never fires: a line logged outside any loop
    afterwards is still rendered at once, after the lines that loop left queued."""
    log = structlog.get_logger("t")

    async def in_a_loop() -> None:
        log.info("in_the_loop")

    loop = asyncio.new_event_loop()
    loop.run_until_complete(in_a_loop())
    loop.close()
    log.info("after_the_loop")
    factory = structlog.get_config()["logger_factory"]
    assert isinstance(factory, JsonLines)
    factory.flush()
    assert [line["event"] for line in raw.lines()] == ["in_the_loop", "after_the_loop"]


async def test_a_warning_writes_what_is_queued_before_it_and_flushes(raw: RecordingRaw) -> None:
    log = structlog.get_logger("t")
    log.info("queued")
    log.error("now")
    # No flush() and no loop iteration: the error went out at once, after the queued line.
    assert [line["event"] for line in raw.lines()] == ["queued", "now"]


def test_info_lines_are_buffered_not_written_one_by_one(raw: RecordingRaw) -> None:
    log = structlog.get_logger("t")
    for n in range(100):
        log.info("line", n=n)
    assert raw.writes == []  # 100 short lines sit in the 64 KiB buffer
    factory = structlog.get_config()["logger_factory"]
    assert isinstance(factory, JsonLines)
    factory.close()
    assert len(raw.writes) == 1
    assert [line["n"] for line in raw.lines()] == list(range(100))


def test_lines_queued_by_a_loop_that_ended_are_still_written() -> None:
    recorder = RecordingRaw()
    writer = JsonLines(io.BufferedWriter(recorder), flush_interval=0.02)
    loop = asyncio.new_event_loop()

    def log_and_stop() -> None:
        writer.info({"event": "last_words", "level": "info", "timestamp": time.time()})
        loop.stop()  # the loop ends before the drain it scheduled can run

    loop.call_soon(log_and_stop)
    loop.run_forever()
    loop.close()
    try:
        deadline = time.monotonic() + 10
        while not recorder.writes and time.monotonic() < deadline:
            time.sleep(0.01)  # polling for the flush thread, bounded by the deadline
        assert [line["event"] for line in recorder.lines()] == ["last_words"]
    finally:
        writer.close()


def run_python(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_every_line_reaches_stdout_by_exit_even_under_pythonunbuffered(tmp_path: Path) -> None:
    code = (
        "import asyncio, structlog\n"
        "from llm_backends.logs import configure_logging\n"
        "configure_logging('INFO')\n"
        "log = structlog.get_logger()\n"
        "async def main():\n"
        "    for n in range(3000):\n"
        "        log.info('line', n=n)\n"
        "asyncio.run(main())\n"
        "log.info('last')\n"
    )
    done = run_python(code, tmp_path, PYTHONUNBUFFERED="1")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line.get("n") for line in lines[:-1]] == list(range(3000))
    assert lines[-1]["event"] == "last"


def test_an_applications_own_structlog_configuration_wins(tmp_path: Path) -> None:
    """get_llm_router() sets up JSON lines only for an application that has not configured
    structlog (see test_singleton for one that has not)."""
    code = (
        "import structlog\n"
        "structlog.configure(processors=[structlog.processors.KeyValueRenderer()])\n"
        "from llm_backends import get_llm_router\n"
        "get_llm_router()\n"
        "structlog.get_logger().info('mine', a=1)\n"
    )
    done = run_python(code, tmp_path, ADMIN_API_URL="http://127.0.0.1:9")
    assert done.returncode == 0, done.stderr
    assert "a=1 event='mine'" in done.stdout
    assert '"event"' not in done.stdout


def test_console_format_when_json_is_off(tmp_path: Path) -> None:
    code = (
        "import structlog\n"
        "from llm_backends.logs import configure_logging\n"
        "configure_logging('INFO', json=False)\n"
        "structlog.get_logger().info('routing_llm_request', token='llmb_0123456789abcdef')\n"
    )
    done = run_python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "routing_llm_request" in done.stdout and "[redacted]" in done.stdout
    assert "llmb_0123456789abcdef" not in done.stdout


_CONSOLE_LINE = (
    "from llm_backends.logs import configure_logging; import structlog; "
    "configure_logging('INFO', False); structlog.get_logger().info('hello', model='m')"
)


def test_console_format_has_no_colour_codes_in_a_pipe() -> None:
    """LOG_JSON=false into a file or a pipe: plain text."""
    done = subprocess.run(
        [sys.executable, "-c", _CONSOLE_LINE], capture_output=True, text=True, timeout=60
    )
    assert "hello" in done.stdout and "model=m" in done.stdout
    assert "\x1b[" not in done.stdout


def test_console_format_is_coloured_on_a_terminal() -> None:
    main, child = os.openpty()
    try:
        subprocess.run([sys.executable, "-c", _CONSOLE_LINE], stdout=child, timeout=60, check=True)
        output = os.read(main, 65536).decode()
    finally:
        os.close(main)
        os.close(child)
    assert "hello" in output and "\x1b[" in output
