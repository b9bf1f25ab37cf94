"""bench/stack_floor.py: the figures it derives (synthetic samples), and the forwarder on the
gateway's server stack streaming a real mock's answer over real loopback sockets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import procs, stack_floor, targets


def test_added_is_over_direct_and_the_logic_is_ours_beyond_the_stack() -> None:
    samples = {
        "instant": {
            "direct": [0.04, 0.05, 0.04],
            "relay": [0.20, 0.19, 0.30],
            "stack": [0.25, 0.26, 0.24],
            "llm-backends": [0.40, 0.38, 0.41],
        }
    }
    rows = stack_floor.summarize(samples)["instant"]
    assert rows["direct"]["added_ms"] == 0.0
    assert rows["relay"]["added_ms"] == pytest.approx(0.16)
    assert rows["stack"]["added_ms"] == pytest.approx(0.21)
    assert rows["llm-backends"]["ttfb_p50_ms"] == pytest.approx(0.40)
    assert rows["logic"]["added_ms"] == pytest.approx(0.40 - 0.25)


@pytest.fixture
def mock(tmp_path: Path) -> Iterator[procs.Child]:
    child = procs.start_mock("mock", cpus=None, log_dir=tmp_path)
    yield child
    child.stop()


def test_the_forwarder_streams_the_mocks_answer_unchanged(
    tmp_path: Path, mock: procs.Child
) -> None:
    child = stack_floor.spawn("stack", mock.port, tmp_path)
    direct, forwarded = targets.Http(mock.port), targets.Http(child.port)
    try:
        body = targets.chat_body("mock", stream=True)
        for _ in range(2):  # the pool's keep-alive connection, reused
            a = direct.request("POST", targets.CHAT_PATH, body)
            b = forwarded.request("POST", targets.CHAT_PATH, body)
            assert a.status == b.status == 200
            assert _events(b.body) == _events(a.body)
            assert _events(b.body)[-1] == "data: [DONE]"
    finally:
        direct.close()
        forwarded.close()
        child.stop()


def _events(body: bytes) -> list[str]:
    """The SSE data lines, without the per-answer id and time."""
    lines = [line for line in body.decode().splitlines() if line.startswith("data: ")]
    return [_strip_id(line) for line in lines]


def _strip_id(line: str) -> str:
    if line == "data: [DONE]":
        return line
    doc = json.loads(line[6:])
    doc.pop("id", None)
    doc.pop("created", None)
    return json.dumps(doc, sort_keys=True)
