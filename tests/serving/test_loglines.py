"""AtomicLines: every write(2) a worker makes to the shared stdout is whole lines of at most
PIPE_BUF bytes (atomic on a pipe), so two workers' lines never interleave mid-line."""

from __future__ import annotations

import os
import select

import orjson
import pytest

from llm_backends.serving import loglines
from llm_backends.serving.loglines import AtomicLines


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    chunks: list[bytes] = []

    def write(fd: int, data: bytes) -> int:
        chunks.append(bytes(data))
        return len(data)

    monkeypatch.setattr(loglines.os, "write", write)
    return chunks


def test_writes_are_whole_lines_within_pipe_buf(writes: list[bytes]) -> None:
    stream = AtomicLines(1)
    lines = [orjson.dumps({"n": i, "pad": "x" * (i % 900)}) + b"\n" for i in range(3000)]
    for start in range(0, len(lines), 7):  # as the logging writes: a few lines at a time
        stream.write(b"".join(lines[start : start + 7]))
    stream.flush()
    assert b"".join(writes) == b"".join(lines)
    assert len(writes) > 1
    assert all(chunk.endswith(b"\n") and len(chunk) <= select.PIPE_BUF for chunk in writes)


def test_a_line_longer_than_pipe_buf_is_still_written_whole(writes: list[bytes]) -> None:
    stream = AtomicLines(1)
    long_line = b"y" * (3 * select.PIPE_BUF) + b"\n"
    stream.write(b"short\n" + long_line + b"after\n")
    stream.flush()
    assert b"".join(writes) == b"short\n" + long_line + b"after\n"


def test_a_real_pipe_receives_everything() -> None:
    read_end, write_end = os.pipe()
    try:
        stream = AtomicLines(write_end)
        stream.write(b'{"a": 1}\n{"b": 2}\n')
        stream.flush()
        assert os.read(read_end, 100) == b'{"a": 1}\n{"b": 2}\n'
    finally:
        os.close(read_end)
        os.close(write_end)
