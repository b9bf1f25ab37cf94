"""The zero-logic relay arm of the benchmark (bench/relay.py): the "beyond the relay floor"
figures (synthetic results), where the arm is measured (fake load, no processes), and the
relay itself relaying real requests and closes between real loopback sockets."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bench import before, procs, relay, report, report_md, report_perf, run, targets
from bench.plan import Plan
from bench.targets import Target

# -- the figures ------------------------------------------------------------------------------


def _results(with_before: bool = True, with_relay: bool = True) -> dict[str, Any]:
    """chat c=1 and stream TTFB c=1 as bench/run.py records them (added figures only)."""

    def section(key: str, ours: float, theirs: float, floor: float) -> dict[str, Any]:
        out: dict[str, Any] = {"direct": {}, "llm-backends": {key: ours}}
        if with_before:
            out[before.NAME] = {key: theirs}
        if with_relay:
            out[relay.NAME] = {key: floor}
        return out

    return {
        "chat": {"c1": section("added_p50_ms", 0.25, 0.40, 0.10)},
        "stream": {
            "ttfb_c1": section("added_ttfb_p50_ms", 0.30, 0.50, 0.20),
            "ttfb_c1_instant": section("added_ttfb_p50_ms", 0.15, 0.31, 0.11),
        },
    }


def _floor_lines(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c for c in checks if "beyond the relay floor" in c["target"]]


def test_added_beyond_the_relay_floor_is_a_figure_for_ours_and_the_before_arm() -> None:
    checks = report_perf.performance_checks(_results(), "llm-backends")
    lines = _floor_lines(checks)
    assert [c["target"] for c in lines] == [
        "added latency c=1 (OpenAI) beyond the relay floor (0.100 ms)",
        "stream added TTFB c=1 (paced mock) beyond the relay floor (0.200 ms)",
        "stream added TTFB c=1 (instant mock) beyond the relay floor (0.110 ms)",
    ]
    assert [c["value"] for c in lines] == [
        "ours 0.150 ms vs before 0.300 ms (ratio 0.50)",
        "ours 0.100 ms vs before 0.300 ms (ratio 0.33)",
        "ours 0.040 ms vs before 0.200 ms (ratio 0.20)",
    ]
    assert all(c["info"] and c["pass"] is None and c["bound"] == "" for c in lines)


def test_the_ttfb_target_stays_half_of_the_before_arms_added_not_beyond_the_floor() -> None:
    with_floor = report_perf.performance_checks(_results(), "llm-backends")
    without = report_perf.performance_checks(_results(with_relay=False), "llm-backends")
    assert not _floor_lines(without)

    def targets_only(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [c for c in checks if not c.get("info")]

    assert targets_only(with_floor) == targets_only(without)
    ttfb = [c for c in targets_only(with_floor) if c["target"].startswith("stream added TTFB")]
    assert [c["pass"] for c in ttfb] == [False, True]  # 0.30 > 0.50 / 2; 0.15 <= 0.31 / 2


def test_no_floor_line_without_the_before_arm() -> None:
    checks = report_perf.performance_checks(_results(with_before=False), "llm-backends")
    assert not _floor_lines(checks)


def test_the_table_shows_the_relay_column_next_to_direct_and_the_info_lines() -> None:
    results = _results()
    doc = {"results": results, "checks": report.checks(results)}
    text = report_md.table(doc)
    assert text.splitlines()[0].split() == ["direct", "llm-backends", before.NAME, relay.NAME]
    info = [line for line in text.splitlines() if "beyond the relay floor" in line]
    assert len(info) == 3 and all(line.startswith("  [info]") for line in info)


def test_the_method_says_what_the_relay_is_only_when_it_ran() -> None:
    assert relay.method_lines({"relay_arm": None}) == []
    (bullet,) = relay.method_lines({"relay_arm": {"name": relay.NAME}})
    assert relay.LABEL in bullet and "floor" in bullet


# -- where the arm is measured ------------------------------------------------------------------


def _t(name: str, port: int = 1) -> Target:
    return Target(name, port, {}, "m", "m")


class _FakeArm(relay.Arm):
    """The arm's targets without processes: port 11 relays to the instant mock, 12 to paced."""

    def __init__(self) -> None:
        pass

    def target(self, paced: bool = False) -> Target:
        return _t(relay.NAME, 12 if paced else 11)


@pytest.fixture
def fake_load(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int, bool]]:
    """Records (target, port, concurrency, paced) of each load run instead of running it."""
    calls: list[tuple[str, int, int, bool]] = []

    def load(t: Target, *, concurrency: int, paced: bool = False, **_: Any) -> dict[str, Any]:
        calls.append((t.name, t.port, concurrency, paced))
        return {"rps": 1.0, "p50_ms": 1.0, "ttfb_p50_ms": 1.0}

    monkeypatch.setattr(run, "load", load)
    return calls


def _plan(rounds: int) -> Plan:
    _, plan = run.parse_args(["--rounds", str(rounds), "--only", "chat,stream"])
    return plan


def test_the_relay_is_in_chat_c1_only_interleaved_after_direct(
    fake_load: list[tuple[str, int, int, bool]],
) -> None:
    tgts = [_t("direct"), _t("llm-backends")]
    res = run.scenario_chat(_plan(2), tgts, _t("xcore"), _FakeArm())
    assert list(res["c1"]) == ["direct", relay.NAME, "llm-backends", "xcore"]
    assert list(res["c32"]) == ["direct", "llm-backends"]
    c1 = [(name, port) for name, port, conc, _ in fake_load if conc == 1]
    # Round 2 starts one further: the relay is interleaved, not run as a block.
    assert c1 == [
        ("direct", 1),
        (relay.NAME, 11),
        ("llm-backends", 1),
        ("xcore", 1),
        (relay.NAME, 11),
        ("llm-backends", 1),
        ("xcore", 1),
        ("direct", 1),
    ]
    assert res["c1"][relay.NAME]["added_p50_ms"] == 0.0


def test_the_relay_is_in_stream_ttfb_only_each_to_the_mock_direct_uses(
    fake_load: list[tuple[str, int, int, bool]],
) -> None:
    paced = [_t("direct", 2), _t("llm-backends")]
    instant = [_t("direct", 3), _t("llm-backends")]
    res = run.scenario_stream(_plan(1), paced, instant, _FakeArm())
    assert list(res["ttfb_c1"]) == ["direct", relay.NAME, "llm-backends"]
    assert list(res["ttfb_c1_instant"]) == ["direct", relay.NAME, "llm-backends"]
    assert relay.NAME not in res["c32"]
    relayed = [(port, conc, pacing) for name, port, conc, pacing in fake_load if name == "relay"]
    assert relayed == [(12, 1, True), (11, 1, False)]


def test_without_the_arm_nothing_changes_and_no_relay_leaves_it_out(
    fake_load: list[tuple[str, int, int, bool]],
) -> None:
    tgts = [_t("direct"), _t("llm-backends")]
    assert relay.with_arm(tgts, None) == tgts
    res = run.scenario_chat(_plan(1), tgts, _t("xcore"))
    assert list(res["c1"]) == ["direct", "llm-backends", "xcore"]
    args, _ = run.parse_args(["--no-relay", "--only", "chat"])
    assert args.no_relay
    args, _ = run.parse_args(["--only", "chat"])
    assert not args.no_relay


# -- the relay itself ---------------------------------------------------------------------------


@pytest.fixture
def mock(tmp_path: Path) -> Iterator[procs.Child]:
    child = procs.start_mock("mock", cpus=None, log_dir=tmp_path)
    yield child
    child.stop()


@contextmanager
def _relay(tmp_path: Path, target_port: int) -> Iterator[procs.Child]:
    child = relay.spawn("relay", target_port, tmp_path)
    try:
        yield child
    finally:
        child.stop()


class _AnyOk:
    """Equal to any chat answer with content (the mock's text is its own business)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, dict) and bool(other["choices"][0]["message"]["content"])


ANY_OK = _AnyOk()


def _stable(body: bytes) -> Any:
    """The mock's answer without what differs per request (id, timestamps)."""
    doc = json.loads(body)
    for key in ("id", "created"):
        doc.pop(key, None)
    return doc


def _stream_text(body: bytes) -> list[Any]:
    out = []
    for line in body.decode().splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            out.append(json.loads(line[6:])["choices"])
        elif line.startswith("data: "):
            out.append(line)
    return out


def test_the_relay_relays_real_requests_and_answers_as_direct(
    tmp_path: Path, mock: procs.Child
) -> None:
    with _relay(tmp_path, mock.port) as child:
        _compare(targets.Http(mock.port), targets.Http(child.port))


def _compare(direct: targets.Http, relayed: targets.Http) -> None:
    try:
        for _ in range(2):  # the same keep-alive connection, twice
            body = targets.chat_body("mock")
            a = direct.request("POST", targets.CHAT_PATH, body)
            b = relayed.request("POST", targets.CHAT_PATH, body)
            assert (b.status, _stable(b.body)) == (a.status, _stable(a.body)) == (200, ANY_OK)
        stream = targets.chat_body("mock", stream=True)
        a = direct.request("POST", targets.CHAT_PATH, stream)
        b = relayed.request("POST", targets.CHAT_PATH, stream)
        assert b.status == a.status == 200
        assert _stream_text(b.body) == _stream_text(a.body)
        assert _stream_text(b.body)[-1] == "data: [DONE]"
        bad = direct.request("POST", targets.CHAT_PATH, {"model": "mock"})
        assert relayed.request("POST", targets.CHAT_PATH, {"model": "mock"}).status == bad.status
    finally:
        direct.close()
        relayed.close()


@pytest.fixture
def upstream() -> Iterator[socket.socket]:
    """A plain listening socket the relay connects to; the test accepts and reads itself."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


def _accept_with_data(upstream: socket.socket, data: bytes) -> socket.socket:
    """The upstream connection that carries `data`: the relay also relayed the connection
    procs.wait_port opened (and closed at once) to see it up; that one ends empty."""
    while True:
        up, _ = upstream.accept()
        up.settimeout(10)
        got = up.recv(len(data))
        if got:
            assert got == data
            return up
        up.close()


@contextmanager
def _pair(tmp_path: Path, upstream: socket.socket) -> Iterator[tuple[socket.socket, socket.socket]]:
    """(client connected through the relay, the relay's upstream connection as accepted),
    after one exchange each way."""
    with (
        _relay(tmp_path, upstream.getsockname()[1]) as child,
        socket.create_connection(("127.0.0.1", child.port), timeout=10) as client,
    ):
        client.sendall(b"ping")
        up = _accept_with_data(upstream, b"ping")
        with up:
            up.sendall(b"pong")
            assert client.recv(16) == b"pong"
            yield client, up


def test_a_client_that_closes_closes_the_upstream_connection(
    tmp_path: Path, upstream: socket.socket
) -> None:
    with _pair(tmp_path, upstream) as (client, up):
        client.close()
        assert up.recv(16) == b""


def test_an_upstream_that_closes_closes_the_client_connection(
    tmp_path: Path, upstream: socket.socket
) -> None:
    with _pair(tmp_path, upstream) as (client, up):
        up.sendall(b"last")
        up.close()
        assert client.recv(16) == b"last"  # what was sent before the close still arrives
        assert client.recv(16) == b""


def test_an_upstream_that_refuses_closes_the_client_connection(tmp_path: Path) -> None:
    with _relay(tmp_path, procs.free_port()) as child:  # nothing listens there
        with socket.create_connection(("127.0.0.1", child.port), timeout=10) as client:
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(16) == b""
        assert child.alive()
