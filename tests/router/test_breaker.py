"""CircuitBreaker state machine, driven by a fake clock."""

from __future__ import annotations

from structlog.testing import capture_logs

from llm_backends.router.breaker import BreakerBoard, CircuitBreaker
from tests.router.support import FakeClock

ENDPOINT = "http://mlx.test:8080"


def make(clock: FakeClock, threshold: int = 3, cooldown: float = 30.0) -> CircuitBreaker:
    return CircuitBreaker(ENDPOINT, threshold=threshold, cooldown=cooldown, clock=clock)


def test_opens_after_threshold_consecutive_failures(clock: FakeClock) -> None:
    breaker = make(clock)
    with capture_logs() as logs:
        for _ in range(2):
            assert breaker.allow()
            breaker.record_failure()
        assert breaker.state == "closed"
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == "open"
    assert not breaker.allow()
    assert [e["event"] for e in logs] == ["backend_circuit_opened"]
    assert logs[0]["endpoint"] == ENDPOINT
    assert logs[0]["consecutive_failures"] == 3


def test_a_success_resets_the_count(clock: FakeClock) -> None:
    breaker = make(clock)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert breaker.state == "open"


def test_half_open_lets_exactly_one_probe_through(clock: FakeClock) -> None:
    breaker = make(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.advance(29.9)
    assert breaker.state == "open"
    assert not breaker.allow()
    clock.advance(0.1)
    assert breaker.state == "half_open"
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # everyone else waits for its verdict
    assert not breaker.allow()


def test_successful_probe_closes(clock: FakeClock) -> None:
    breaker = make(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.advance(30)
    assert breaker.allow()
    with capture_logs() as logs:
        breaker.record_success()
    assert breaker.state == "closed"
    assert [e["event"] for e in logs] == ["backend_circuit_closed"]
    assert all(breaker.allow() for _ in range(5))


def test_failed_probe_reopens_for_a_new_cooldown(clock: FakeClock) -> None:
    breaker = make(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.advance(30)
    assert breaker.allow()
    with capture_logs() as logs:
        breaker.record_failure()
    assert [e["event"] for e in logs] == ["backend_circuit_opened"]
    assert breaker.state == "open"
    clock.advance(29)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()


def test_probe_without_verdict_frees_the_slot(clock: FakeClock) -> None:
    breaker = make(clock)
    for _ in range(3):
        breaker.record_failure()
    clock.advance(30)
    assert breaker.allow()
    breaker.release()  # e.g. the probing request was cancelled
    assert breaker.allow()


def test_release_outside_half_open_changes_nothing(clock: FakeClock) -> None:
    breaker = make(clock)
    breaker.release()
    assert breaker.state == "closed"
    assert breaker.allow()


def test_board_keeps_one_breaker_per_endpoint_and_reports_states(clock: FakeClock) -> None:
    board = BreakerBoard(threshold=1, cooldown=10, clock=clock)
    assert board.get(ENDPOINT) is board.get(ENDPOINT)
    board.get("http://ollama.test:11434").record_success()
    board.get(ENDPOINT).record_failure()
    assert board.states() == {ENDPOINT: "open", "http://ollama.test:11434": "closed"}
    clock.advance(10)
    assert board.states()[ENDPOINT] == "half_open"
