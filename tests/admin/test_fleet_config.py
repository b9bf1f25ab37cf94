"""The fleet fields over the Admin API: endpoints, weight, max_concurrency, fallbacks."""

from __future__ import annotations

from urllib.parse import quote

from tests.conftest import LiveServer

BASE = {"backend_type": "ollama", "endpoint_url": "http://mac-studio:11434"}


def create(server: LiveServer, name: str, **fields: object) -> dict:
    response = server.admin.post("/api/llm-backends", json={"model_name": name, **BASE, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def refused(server: LiveServer, name: str, **fields: object) -> str:
    response = server.admin.post("/api/llm-backends", json={"model_name": name, **BASE, **fields})
    assert response.status_code == 422, response.text
    return response.json()["detail"]


def test_fleet_fields_round_trip_and_default(live_server: LiveServer) -> None:
    plain = create(live_server, "plain")
    assert plain["endpoints"] == [] and plain["fallbacks"] == []
    assert plain["weight"] == 1 and plain["max_concurrency"] is None
    create(live_server, "small")
    body = create(
        live_server,
        "llama3:8b",
        weight=2,
        max_concurrency=4,
        endpoints=[{"url": "http://mac-mini:11434/"}, {"url": "http://gpu:11434", "weight": 3}],
        fallbacks=["small"],
    )
    assert body["endpoints"] == [
        {"url": "http://mac-mini:11434", "weight": 1, "max_concurrency": None},
        {"url": "http://gpu:11434", "weight": 3, "max_concurrency": None},
    ]
    assert (body["weight"], body["max_concurrency"], body["fallbacks"]) == (2, 4, ["small"])
    lookup = live_server.client().get(f"/api/llm-backends/model/{quote('llama3:8b')}").json()
    assert lookup["endpoints"] == body["endpoints"] and lookup["fallbacks"] == ["small"]
    updated = live_server.admin.put(
        f"/api/llm-backends/{body['id']}", json={"endpoints": [], "max_concurrency": None}
    ).json()
    assert updated["endpoints"] == [] and updated["max_concurrency"] is None
    assert updated["fallbacks"] == ["small"]


def test_bad_servers_are_refused_naming_the_field(live_server: LiveServer) -> None:
    assert "endpoints" in refused(live_server, "m", endpoints=[{"url": "ftp://x"}])
    assert "weight" in refused(live_server, "m", endpoints=[{"url": "http://x", "weight": 0}])
    assert "max_concurrency" in refused(live_server, "m", max_concurrency=0)
    twice = refused(live_server, "m", endpoints=[{"url": "http://mac-studio:11434"}])
    assert "listed twice" in twice
    auto = refused(live_server, "m", backend_type="auto", endpoints=[{"url": "http://x"}])
    assert "auto" in auto
    assert "max_concurrency: not supported" in refused(
        live_server, "m", backend_type="auto", max_concurrency=2
    )


def test_fallbacks_refuse_unknown_names_cycles_and_long_chains(live_server: LiveServer) -> None:
    assert "unknown model 'ghost'" in refused(live_server, "a", fallbacks=["ghost"])
    a = create(live_server, "a")
    b = create(live_server, "b", fallbacks=["a"])
    assert "this config itself" in refused(live_server, "c", fallbacks=["c"])
    # a -> b would close a -> b -> a.
    response = live_server.admin.put(f"/api/llm-backends/{a['id']}", json={"fallbacks": ["b"]})
    assert response.status_code == 422
    assert response.json()["detail"] == "fallbacks: cycle a -> b -> a"
    assert live_server.admin.get(f"/api/llm-backends/{a['id']}").json()["fallbacks"] == []
    for name, nxt in [("c", "b"), ("d", "c"), ("e", "d"), ("f", "e")]:
        create(live_server, name, fallbacks=[nxt])
    # g -> f -> e -> d -> c -> b -> a: six models behind g.
    assert "longer than 5" in refused(live_server, "g", fallbacks=["f"])
    assert "fallbacks" in refused(live_server, "g", fallbacks=["a", "b", "c", "d", "e", "f"])
    assert b["fallbacks"] == ["a"]
