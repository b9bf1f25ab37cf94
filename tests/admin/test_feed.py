"""The change feed over real HTTP: `GET /api/llm-backends/changes` (SQLite and PostgreSQL)."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from llm_backends.admin.feed import ChangeFeed
from tests.cluster.support import seconds_until
from tests.conftest import LiveServer

PHI = {
    "model_name": "phi3:mini",
    "backend_type": "ollama",
    "endpoint_url": "http://localhost:11434",
}


def version_of(server: LiveServer) -> int:
    response = server.client().get("/api/llm-backends/changes")
    assert response.status_code == 200, response.text
    assert response.json()["changes"] == []
    return response.json()["version"]


def feed_of(server: LiveServer) -> ChangeFeed:
    """The server's feed (the app runs in a thread of this process)."""
    feed: ChangeFeed = server.thread.server.config.app.state.change_feed
    return feed


def changes_since(server: LiveServer, since: int, timeout: float = 0) -> dict:
    response = server.client().get(
        "/api/llm-backends/changes", params={"since": since, "timeout": timeout}
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_every_write_is_one_version_naming_its_models(live_server: LiveServer) -> None:
    admin = live_server.admin
    start = version_of(live_server)
    created = admin.post("/api/llm-backends", json=PHI).json()
    backend_id = created["id"]
    assert admin.put(f"/api/llm-backends/{backend_id}", json={"max_tokens": 9}).status_code == 200
    assert admin.post(f"/api/llm-backends/{backend_id}/toggle").status_code == 200
    renamed = admin.put(f"/api/llm-backends/{backend_id}", json={"model_name": "phi3:new"})
    assert renamed.status_code == 200
    assert admin.delete(f"/api/llm-backends/{backend_id}").status_code == 200
    # Not config changes: a refused duplicate, a 404, and the stats fold.
    admin.post("/api/llm-backends", json={**PHI, "model_name": "other"})
    assert admin.post("/api/llm-backends", json={**PHI, "model_name": "other"}).status_code == 409
    assert admin.put("/api/llm-backends/999999", json={"max_tokens": 9}).status_code == 404
    stats = {"model_name": "other", "requests": 3, "errors": 0, "latency_ms_sum": 30.0}
    assert admin.post("/api/llm-backends/metrics", json={"stats": [stats]}).status_code == 200

    feed = changes_since(live_server, start)
    assert feed["version"] == start + 6
    assert feed["changes"] == [
        {"model_name": "phi3:mini", "version": start + 1},  # create
        {"model_name": "phi3:mini", "version": start + 2},  # update
        {"model_name": "phi3:mini", "version": start + 3},  # toggle
        {"model_name": "phi3:mini", "version": start + 4},  # rename: the old name is freed...
        {"model_name": "phi3:new", "version": start + 4},  # ...and the new one taken
        {"model_name": "phi3:new", "version": start + 5},  # delete
        {"model_name": "other", "version": start + 6},  # create (the 409 is no change)
    ]
    assert changes_since(live_server, start + 5)["changes"] == [
        {"model_name": "other", "version": start + 6}
    ]


def test_a_held_poll_answers_when_a_write_lands(live_server: LiveServer) -> None:
    start = version_of(live_server)
    answers: list[tuple[dict, float]] = []

    def poll() -> None:
        began = time.monotonic()
        answers.append((changes_since(live_server, start, timeout=20), time.monotonic() - began))

    poller = threading.Thread(target=poll)
    poller.start()
    seconds_until(lambda: feed_of(live_server).held == 1, within=10)
    assert not answers, "a poll with nothing new must be held"
    assert live_server.admin.post("/api/llm-backends", json=PHI).status_code == 201
    poller.join(10)
    ((feed, elapsed),) = answers
    assert feed["changes"] == [{"model_name": "phi3:mini", "version": start + 1}]
    assert elapsed < 10  # woken by the write, not by its 20 s timeout


def test_a_poll_whose_client_leaves_is_let_go_at_once(live_server: LiveServer) -> None:
    """A follower that went away (a closed router, a killed service) holds no place among
    the polls, nor the server's shutdown, until its timeout."""
    start = version_of(live_server)
    feed = feed_of(live_server)
    port = int(live_server.url.rsplit(":", 1)[1])
    request = f"GET /api/llm-backends/changes?since={start}&timeout=60 HTTP/1.1\r\nHost: t\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port)) as follower:
        follower.sendall(request.encode())
        seconds_until(lambda: feed.held == 1, within=10)
        metrics = live_server.client().get("/metrics").text
        assert "\nllm_config_feed_polls_held 1.0\n" in metrics  # what an operator sees
    seconds_until(lambda: feed.held == 0, within=10)  # its timeout: 60 s


def test_nothing_new_answers_at_the_timeout(live_server: LiveServer) -> None:
    start = version_of(live_server)
    began = time.monotonic()
    assert changes_since(live_server, start, timeout=0.5) == {"version": start, "changes": []}
    assert time.monotonic() - began >= 0.5


def test_since_ahead_of_the_store_answers_at_once(live_server: LiveServer) -> None:
    """A store older than the follower (restored, replaced): the version goes down, and the
    follower reloads everything."""
    start = version_of(live_server)
    assert changes_since(live_server, start + 100, timeout=30) == {"version": start, "changes": []}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": -1}, "since"),
        ({"since": 2**63}, "since"),  # beyond a 64-bit version (schemathesis found it)
        ({"since": 1, "timeout": 61}, "timeout"),
        ({"since": "x"}, "since"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(
    live_server: LiveServer, params: dict, field: str
) -> None:
    response = live_server.client().get("/api/llm-backends/changes", params=params)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(f"{field}:")


def test_the_feed_needs_no_token_and_carries_no_config(live_server: LiveServer) -> None:
    start = version_of(live_server)
    live_server.admin.post("/api/llm-backends", json={**PHI, "description": "secret-ish"})
    body = live_server.client().get("/api/llm-backends/changes", params={"since": start}).text
    assert "phi3:mini" in body
    assert "localhost:11434" not in body and "secret-ish" not in body
    # Declared before /{backend_id}: "changes" is not taken for an id (that would be a 422).
    assert live_server.admin.get("/api/llm-backends/1").status_code in (200, 404)
