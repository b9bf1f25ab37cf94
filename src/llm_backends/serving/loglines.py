"""Workers' stdout: buffered, but never a torn line.

Several workers write JSON lines to one stdout, in a container a pipe. The logging's own
buffered stdout writes 64 KiB at a time, cut anywhere; on a pipe, only writes of at most
PIPE_BUF bytes are atomic, so two workers' writes could interleave mid-line. This stream
writes whole lines in pieces of at most PIPE_BUF bytes (a longer line is the only exception).
"""

from __future__ import annotations

import os
import select
import threading

#: Bytes collected before a write(2) is forced (the flush thread writes more often).
BUFFER_BYTES = 64 * 1024


class AtomicLines:
    """The `stream` of `configure_logging` for a worker: `write` and `flush`, thread-safe
    (the event loop writes, the log-flush thread flushes)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = bytearray()
        self._lock = threading.Lock()

    def write(self, data: bytes) -> int:
        with self._lock:
            self._buffer += data
            if len(self._buffer) >= BUFFER_BYTES:
                self._write_out()
        return len(data)

    def flush(self) -> None:
        with self._lock:
            self._write_out()

    def _write_out(self) -> None:
        buffer, start = self._buffer, 0
        while start < len(buffer):
            end = min(start + select.PIPE_BUF, len(buffer))
            if end < len(buffer):
                newline = buffer.rfind(b"\n", start, end)
                if newline >= start:
                    end = newline + 1
            start += os.write(self._fd, buffer[start:end])
        buffer.clear()
