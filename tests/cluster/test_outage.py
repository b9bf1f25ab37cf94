"""Replicas when the database goes away and comes back, on SQLite (the poll alone), and at
shutdown with change-feed polls held."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from llm_backends.store import migrate
from tests.cluster.support import (
    MODEL,
    Replica,
    fresh_postgres,
    replicas,
    seconds_until,
    served_model,
)
from tests.fakes.common import FakeServer
from tests.fakes.served import serve_process
from tests.fakes.tcp_proxy import tcp_proxy


def create(replica: Replica, ollama_url: str) -> int:
    with replica.admin() as admin:
        response = admin.post(
            "/api/llm-backends",
            json={"model_name": MODEL, "backend_type": "ollama", "endpoint_url": ollama_url,
                  "backend_model": "v1"},
        )  # fmt: skip
    assert response.status_code == 201, response.text
    return response.json()["id"]


def put(replica: Replica, backend_id: int, backend_model: str) -> None:
    with replica.admin() as admin:
        response = admin.put(
            f"/api/llm-backends/{backend_id}", json={"backend_model": backend_model}
        )
    assert response.status_code == 200, response.text


@pytest.mark.postgres
def test_database_unreachable_nothing_stalls_and_all_converge_after(
    fake_ollama: FakeServer,
) -> None:
    with fresh_postgres() as database_url:
        url = make_url(database_url)
        with tcp_proxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
            proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(
                hide_password=False
            )
            with (
                replicas(database_url, fake_ollama, 1) as (a,),
                replicas(proxied, fake_ollama, 1, CONFIG_POLL_SECONDS="1") as (b,),
            ):
                backend_id = create(a, fake_ollama.url)
                seconds_until(lambda: served_model(b, fake_ollama) == "v1", 5)
                proxy.cut()  # B's pool and listener lose the database
                put(a, backend_id, "v2")
                deadline = time.monotonic() + 3
                while time.monotonic() < deadline:  # B keeps serving what it knows, promptly
                    began = time.monotonic()
                    assert served_model(b, fake_ollama) == "v1"
                    assert time.monotonic() - began < 1.0
                began = time.monotonic()
                with b.admin() as admin:
                    assert admin.get("/api/llm-backends").status_code == 503
                assert httpx.get(f"{b.url}/ready").status_code == 503
                assert time.monotonic() - began < 6  # connect timeout 5 s at most
                proxy.restore()
                # Reconnect backoff (0.2 s doubling, at most 10 s) and the 1 s poll.
                seconds_until(lambda: served_model(b, fake_ollama) == "v2", 15)
                log = "".join(b.process.output)
                assert "config_listener_disconnected" in log


def test_two_processes_on_one_sqlite_file_converge_within_the_poll(
    tmp_path: Path, fake_ollama: FakeServer
) -> None:
    database_url = f"sqlite:///{tmp_path / 'shared.db'}"
    migrate.upgrade(database_url)
    with replicas(database_url, fake_ollama, 2, CONFIG_POLL_SECONDS="0.5") as (a, b):
        backend_id = create(a, fake_ollama.url)
        seconds_until(lambda: served_model(b, fake_ollama) == "v1", 5)
        put(a, backend_id, "v2")
        assert served_model(a, fake_ollama) == "v2"  # the writer's own process: at once
        waited = seconds_until(lambda: served_model(b, fake_ollama) == "v2", 5)
        assert waited < 0.5 + 1.0  # one poll interval, and slack for a loaded machine


def polls_held(url: str) -> float:
    """`llm_config_feed_polls_held` of the process at `url`."""
    metrics = httpx.get(f"{url}/metrics").text
    match = re.search(r"^llm_config_feed_polls_held (\S+)$", metrics, re.MULTILINE)
    assert match, "the gauge is missing from /metrics"
    return float(match.group(1))


def test_shutdown_answers_held_change_polls_at_once(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'stop.db'}"
    migrate.upgrade(database_url)
    env = {"DATABASE_URL": database_url, "LOG_LEVEL": "INFO"}
    with serve_process(env) as served:
        version = httpx.get(f"{served.url}/api/llm-backends/changes").json()["version"]
        answers: list[int] = []

        def hold() -> None:
            response = httpx.get(
                f"{served.url}/api/llm-backends/changes",
                params={"since": version, "timeout": 60},
                timeout=70,
            )
            answers.append(response.status_code)

        poller = threading.Thread(target=hold)
        poller.start()
        seconds_until(lambda: polls_held(served.url) == 1, within=10)
        began = time.monotonic()
        os.kill(served.pid, signal.SIGTERM)
        poller.join(20)
        assert answers == [200]
        assert time.monotonic() - began < 10  # not the poll's 60 s
