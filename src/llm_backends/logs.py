"""structlog set-up: JSON lines (or console), level filtering that costs nothing when off,
and a last-step redaction of anything that looks like a secret.

A JSON line is written for every request (`routing_llm_request`), so its cost was measured
and cut (bench machine, a gateway at concurrency 1, where each line cost ~25-30 µs of
latency when rendered and flushed in place):
- The event is captured where it is logged (context, level, time, exception text) but
  rendered (redaction, ISO time, orjson) later by the running loop, so a gateway has sent its
  response before it renders the line: in batches of `DRAIN_BATCH` lines (a `call_soon` once
  the batch is full), and the rest by a timer `DRAIN_DELAY` seconds after the first of them.
  Outside a loop, and at WARNING and above, a line is rendered and written at once.
  Measured on a library call (bench/library_bench.py, CPU per call): a `call_soon` per line
  cost a handle and, when nothing else was ready, a loop iteration of its own, ~1.7 µs; a
  timer a few milliseconds ahead made every blocking wait for the network dearer, ~3 µs a
  call on the bench VM, while one 100 ms ahead costs nothing measurable.
- Lines go to a buffered stdout of our own, flushed every `LOG_FLUSH_INTERVAL` seconds, at
  WARNING and above, and at exit, not one write(2) per line: on a pipe (a container's
  stdout) each write also wakes the reader.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import re
import sys
import threading
import time
from collections import deque
from collections.abc import MutableMapping
from typing import Any, BinaryIO

import orjson
import structlog

_SECRET_KEYS = re.compile(r"token|authorization|api[-_]?key|password|secret", re.IGNORECASE)
_SECRET_VALUE = re.compile(r"(?i:bearer)\s+\S+|llmb_[A-Za-z0-9_-]{8,}")
#: Keys that merely contain a secret-looking word.
_SAFE_KEYS = frozenset(
    {
        "event",
        "max_tokens",
        "max_tokens_capped",
        "prompt_tokens",
        "completion_tokens",
        "tokens_per_sec",
    }
)
#: structlog method name -> the `level` written (as structlog's add_log_level names them).
_LEVELS = {"warn": "warning", "exception": "error", "err": "error", "msg": "info"}
#: Queued DEBUG/INFO lines rendered together once there are this many: the loop pauses for
#: ~100 µs to render them, and one callback serves them all.
DRAIN_BATCH = 64
#: Seconds after which fewer lines than a batch are rendered anyway (then flushed with the
#: next flush): a timer that far ahead costs nothing per wait (see the module docstring).
DRAIN_DELAY = 0.1

Event = MutableMapping[str, Any]


class SecretRedactor:
    """structlog processor: values of secret-named keys, and bearer tokens or llm-backends
    tokens inside any string, become "[redacted]". Key verdicts are cached (keys repeat)."""

    def __init__(self) -> None:
        self._secret_key: dict[str, bool] = {}
        #: The keys found not secret so far (what `JsonLines.render` checks in one C call).
        self.safe_keys: set[str] = set()

    def __call__(self, _logger: Any, _name: str, event: Event) -> Event:
        for key, value in event.items():
            secret = self._secret_key.get(key)
            if secret is None:
                secret = key not in _SAFE_KEYS and _SECRET_KEYS.search(key) is not None
                if len(self._secret_key) < 1024:
                    self._secret_key[key] = secret
                    if not secret:
                        self.safe_keys.add(key)
            if secret:
                event[key] = "[redacted]"
            elif isinstance(value, str) and ("llmb_" in value or "bearer" in value.lower()):
                event[key] = _SECRET_VALUE.sub("[redacted]", value)
        return event


class IsoTime:
    """`time.time()` values as ISO 8601 UTC with microseconds ("...T08:11:03.558293Z"); the
    date part is formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, now: float) -> str:
        second = int(now)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = second
        # %-formatting truncates the float like int() does, at half the cost of an f-string.
        return "%s.%06dZ" % (self._prefix, (now - second) * 1e6)  # noqa: UP031


def capture(logger: Any, method_name: str, event: Event) -> tuple[tuple[Event], dict[str, Any]]:
    """Last processor of the JSON chain: what can't wait (level, time, exception text), then
    the event itself goes to `JsonLines`, which renders it."""
    event["level"] = _LEVELS.get(method_name, method_name)
    event["timestamp"] = time.time()
    if "exc_info" in event:
        event = structlog.processors.format_exc_info(logger, method_name, event)
    return (event,), {}


class JsonLines:
    """structlog's logger (and logger factory) for JSON lines on a binary stream.

    `debug`/`info` events are queued and rendered by the running loop (at once when there is
    none): after the step that fills a batch of `drain_batch` (a `call_soon`; 1: after every
    step that logs), and at the latest `drain_delay` seconds after the first of them (a timer).
    `warning` and above are rendered at once, after anything queued, and flushed. A daemon
    thread flushes the stream every `flush_interval` seconds (0: every line is flushed as it is
    written), and writes what a loop that ended before its callback ran left queued.
    """

    def __init__(
        self,
        stream: BinaryIO,
        flush_interval: float,
        drain_batch: int = DRAIN_BATCH,
        drain_delay: float = DRAIN_DELAY,
    ) -> None:
        self._stream = stream
        self._interval = flush_interval
        self._batch = drain_batch
        self._delay = drain_delay
        self._queue: deque[Event] = deque()
        #: The loop a drain timer is pending on (None: none is).
        self._timer_on: asyncio.AbstractEventLoop | None = None
        #: A batch's drain (`call_soon`) is pending.
        self._soon = False
        self._redact = SecretRedactor()
        self._iso = IsoTime()
        self._stopped = threading.Event()
        if flush_interval > 0:
            threading.Thread(target=self._flush_periodically, name="log-flush", daemon=True).start()
        atexit.register(self.close)

    def __call__(self, *_args: Any) -> JsonLines:
        """Act as structlog's logger factory too."""
        return self

    def _later(self, event: Event) -> None:
        queue = self._queue
        queue.append(event)
        timer_on = self._timer_on
        # The usual line: a timer is pending on a running loop and the batch is not full.
        # (From a thread without a loop while another runs one, the line goes with that
        # loop's lines: rendered within `drain_delay`, flushed with the next flush anyway.)
        if timer_on is None or len(queue) >= self._batch or not timer_on.is_running():
            self._schedule()

    def _schedule(self) -> None:
        # asyncio's own "running loop or None" (no exception to catch when there is none).
        loop = asyncio.events._get_running_loop() if self._interval > 0 else None
        if loop is None:  # no loop to wait for, or every line as it happens was asked for
            self.drain()
            return
        if self._timer_on is not loop:
            self._timer_on = loop
            loop.call_later(self._delay, self._on_timer, loop)
        if len(self._queue) >= self._batch and not self._soon:
            self._soon = True
            loop.call_soon(self.drain)

    def _on_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer_on is loop:
            self._timer_on = None
        self.drain()

    def _now(self, event: Event) -> None:
        self._queue.append(event)
        self.drain()
        self.flush()

    debug = info = msg = _later
    warning = warn = error = err = exception = critical = fatal = _now

    def render(self, event: Event) -> bytes:
        """The JSON line of an event, secrets redacted.

        Most lines have only known-safe keys and no secret-looking text: they are rendered
        once and the line itself is searched, lower-cased (C speed; orjson leaves ASCII
        letters as they are, so a value holding "llmb_" or "bearer" in any case shows it in
        the line). Only a line that may hold a secret goes through the per-field
        SecretRedactor, then is rendered again.
        """
        event["timestamp"] = self._iso(event["timestamp"])
        if self._redact.safe_keys.issuperset(event):
            line = orjson.dumps(event, default=repr)
            # "Bearer" in any case, as `_SECRET_VALUE` matches it; find(), not `in`:
            # bytes.__contains__ first tries the needle as an int and builds a TypeError.
            lowered = line.lower()
            if lowered.find(b"llmb_") < 0 and lowered.find(b"bearer") < 0:
                return line
        return orjson.dumps(self._redact(None, "", event), default=repr)

    def drain(self) -> None:
        """Render and write every queued event, in order."""
        self._soon = False
        queue = self._queue
        if len(queue) == 1:  # a line logged outside a loop, or a quiet loop's timer
            try:
                event = queue.popleft()
            except IndexError:  # another thread drained it meanwhile
                return
            self._write(self.render(event) + b"\n")
            return
        lines: list[bytes] = []
        render, add = self.render, lines.append
        while queue:
            try:
                event = queue.popleft()
            except IndexError:  # another thread drained it meanwhile
                break
            add(render(event))
        if not lines:
            return
        lines.append(b"")
        self._write(b"\n".join(lines))

    def _write(self, data: bytes) -> None:
        try:
            self._stream.write(data)
            if self._interval <= 0:
                self._stream.flush()
        except (OSError, ValueError):  # stdout closed or gone: nothing left to tell anyone
            self._stopped.set()

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            self._stopped.set()

    def close(self) -> None:
        """Stop the flushing thread; write and flush what is pending."""
        self._stopped.set()
        atexit.unregister(self.close)
        self.drain()
        self.flush()

    def _flush_periodically(self) -> None:
        while not self._stopped.wait(self._interval):
            loop = self._timer_on
            if self._queue and (loop is None or not loop.is_running()):
                # Its loop ended before the drain ran: write the lines anyway, and let the
                # next line arm a timer on the loop running then.
                self._timer_on = None
                self.drain()
            self.flush()


def _json_bound_logger(level_number: int) -> type[Any]:
    """structlog's filtering bound logger, with an `info` that skips structlog's generic
    plumbing (two re-packings of the keywords, a context copy, the return-type dispatch)
    when the JSON chain is the one configured: ~2 µs of each request's `routing_llm_request`.
    Anything else (bound context, positional args, other processors) takes structlog's path.
    """
    base: type[Any] = structlog.make_filtering_bound_logger(level_number)
    if level_number > logging.INFO:
        return base
    merge = structlog.contextvars.merge_contextvars
    chain = [merge, capture]  # the processors of the JSON chain (compared, not rebuilt)

    class JsonBoundLogger(base):  # type: ignore[misc, valid-type]
        def info(self, event: str, *args: Any, **kw: Any) -> Any:
            procs = self._processors
            if args or self._context or procs != chain:
                return base.info(self, event, *args, **kw)
            kw["event"] = event
            (line,), _ = capture(None, "info", merge(None, "info", kw))
            return self._logger.info(line)

    return JsonBoundLogger


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a file
        return False


def _own_stdout() -> BinaryIO:
    """A buffered binary stdout of our own: `sys.stdout.buffer` writes through at once under
    PYTHONUNBUFFERED=1, which container images commonly set."""
    try:
        return open(sys.stdout.fileno(), "wb", buffering=64 * 1024, closefd=False)
    except (AttributeError, OSError, ValueError):  # no real file behind stdout (captured)
        return sys.stdout.buffer


def configure_logging(
    level: str = "INFO",
    json: bool = True,
    *,
    flush_interval: float = 0.2,
    stdlib: bool = True,
    stream: BinaryIO | None = None,
) -> None:
    """Configure structlog (and, with `stdlib`, the root stdlib logger) for this process.

    JSON lines go to `stream` (default: stdout, buffered as the module docstring says).
    """
    level_number = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    if stdlib:
        logging.basicConfig(level=level_number, format="%(message)s")
        # Driver chatter (every statement, every thread hop) is not this service's story.
        for noisy in ("sqlalchemy", "aiosqlite", "asyncpg"):
            logging.getLogger(noisy).setLevel(max(level_number, logging.WARNING))
    previous = structlog.get_config()["logger_factory"]
    if isinstance(previous, JsonLines):
        previous.close()
    factory: Any
    if json:
        if stream is None:
            stream = _own_stdout() if flush_interval > 0 else sys.stdout.buffer
        processors: list[Any] = [structlog.contextvars.merge_contextvars, capture]
        factory = JsonLines(stream, flush_interval)
    else:
        processors = [
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            SecretRedactor(),
            # Colour codes only for a terminal: in a file or a pipe they are noise.
            structlog.dev.ConsoleRenderer(colors=_is_terminal(sys.stdout)),
        ]
        factory = structlog.PrintLoggerFactory(sys.stdout)
    structlog.configure(
        processors=processors,
        wrapper_class=(
            _json_bound_logger(level_number)
            if json
            else structlog.make_filtering_bound_logger(level_number)
        ),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )


def configure_logging_unless_configured(level: str, json: bool, flush_interval: float) -> None:
    """For library use: give an application that never configured structlog llm-backends'
    JSON lines instead of structlog's development console renderer (~50 µs an event, the
    largest cost of a router call). An application's own structlog configuration wins, and
    the stdlib logging tree is left alone.
    """
    if not structlog.is_configured():
        configure_logging(level, json, flush_interval=flush_interval, stdlib=False)
