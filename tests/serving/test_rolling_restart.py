"""A rolling restart of two server processes under continuous load fails no client request.

The client side is what a Kubernetes Service does: a balancer polls each process's `/ready`
and sends only to those that pass. One process gets SIGTERM (its lame duck makes `/ready`
fail while it still serves), exits once its requests are done, starts again on the same
port; then the other. Whole answers and streams, in both protocols, all complete.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import httpx
import orjson

from tests.fakes.common import FakeServer
from tests.fakes.server import free_port
from tests.serving.support import EXIT_MARGIN, GRACE, exit_within, served, server_env

CLIENTS = 4
#: Like a readiness probe's period: well under the lame duck (support.DELAY, 1 s).
POLL_SECONDS = 0.3


class Balancer:
    """Round-robin-ish over the processes whose `/ready` answered 200 at the last poll."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.ready = dict.fromkeys(urls, False)
        self.stop = threading.Event()
        self.poller = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        with httpx.Client(timeout=0.5) as client:
            while not self.stop.is_set():
                for url in self.urls:
                    try:
                        self.ready[url] = client.get(f"{url}/ready").status_code == 200
                    except httpx.TransportError:
                        self.ready[url] = False
                self.stop.wait(POLL_SECONDS)

    def pick(self) -> str:
        while True:
            candidates = [url for url, ok in self.ready.items() if ok]
            if candidates:
                return random.choice(candidates)
            time.sleep(0.01)  # nothing is ready: a Service would queue or refuse too


def call(client: httpx.Client, url: str, kind: int) -> None:
    """One request of four kinds; raises unless it completed in its protocol's terms."""
    messages = [{"role": "user", "content": "hi"}]
    if kind == 0:
        body = {"model": "m", "messages": messages}
        response = client.post(f"{url}/v1/chat/completions", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"]
    elif kind == 1:
        body = {"model": "m", "messages": messages, "stream": True}
        with client.stream("POST", f"{url}/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            lines = [line for line in response.iter_lines() if line]
        assert lines[-1] == "data: [DONE]", lines[-3:]
    elif kind == 2:
        response = client.post(f"{url}/api/chat", json={"model": "m", "messages": messages})
        lines = response.text.strip().splitlines()
        assert response.status_code == 200 and orjson.loads(lines[-1])["done"] is True
    else:
        body = {"model": "m", "prompt": "hi", "stream": False}
        response = client.post(f"{url}/api/generate", json=body)
        assert response.status_code == 200 and response.json()["done"] is True


def test_rolling_restart_under_load_fails_no_request(
    tmp_path: Path, fake_ollama: FakeServer
) -> None:
    # Each answer takes ~0.25 s: requests are in flight whenever a process is stopped.
    fake_ollama.configure(chunks=5, stall=0.05)
    env = server_env(tmp_path, fake_ollama.url)
    ports = [free_port(), free_port()]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    balancer = Balancer(urls)
    done: Counter[str] = Counter()
    failures: list[str] = []

    def client_loop(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client(timeout=20) as client:
            while not balancer.stop.is_set():
                url = balancer.pick()
                try:
                    call(client, url, rng.randrange(4))
                    done[url] += 1
                except Exception as error:
                    failures.append(f"{url}: {error!r}")

    def wait_for_answers(url: str, count: int) -> None:
        target = done[url] + count
        deadline = time.monotonic() + 60
        while done[url] < target:
            assert time.monotonic() < deadline, f"{url} answers nothing"
            time.sleep(0.02)

    with ExitStack() as stack:
        processes = [stack.enter_context(served(env, port=port)) for port in ports]
        balancer.poller.start()
        clients = [threading.Thread(target=client_loop, args=(i,)) for i in range(CLIENTS)]
        for thread in clients:
            thread.start()
        try:
            for url in urls:
                wait_for_answers(url, 10)
            for index, port in enumerate(ports):
                old = processes[index]
                assert old.process is not None
                old.process.send_signal(signal.SIGTERM)
                status, _ = exit_within(old, 1 + GRACE + EXIT_MARGIN)
                assert status == 0
                processes[index] = stack.enter_context(served(env, port=port))
                wait_for_answers(urls[index], 10)  # the new process is in service
        finally:
            balancer.stop.set()
            for thread in clients:
                thread.join(30)

    assert failures == []
    assert sum(done.values()) > 80
