"""Gateway auth: off by default (as with Ollama); with GATEWAY_REQUIRE_AUTH=true a token with
`llm:generate` is needed, sent the way each protocol's clients send it."""

from __future__ import annotations

import asyncio

import ollama
import openai
import pytest
from starlette.requests import Request

from llm_backends.admin.auth import Principal, Scope
from llm_backends.gateway.auth import GatewayAuth
from llm_backends.gateway.errors import GatewayError
from llm_backends.store import tokens
from llm_backends.store.db import create_engine, session_factory
from tests.fakes.common import FakeServer
from tests.gateway.conftest import GatewayServer

MODEL = "phi3:mini"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}


def create_token(gateway: GatewayServer, scope: str) -> str:
    """A stored token, as `llm-backends token create --scope ...` makes it."""

    async def create() -> str:
        engine = create_engine(gateway.server.settings.database_url)
        try:
            async with session_factory(engine)() as session:
                _row, plain = await tokens.create_token(session, "t", [scope])
        finally:
            await engine.dispose()
        return plain

    return asyncio.run(create())


def test_auth_is_off_by_default(gateway: GatewayServer, fake_ollama: FakeServer) -> None:
    gateway.add(MODEL, "ollama", fake_ollama.url)
    assert gateway.http().post("/v1/chat/completions", json=CHAT).status_code == 200
    assert gateway.http().get("/api/tags").status_code == 200


@pytest.fixture
def locked(start_gateway, fake_ollama: FakeServer) -> GatewayServer:  # type: ignore[no-untyped-def]
    gateway = start_gateway(gateway_require_auth=True)
    gateway.add(MODEL, "ollama", fake_ollama.url)
    return gateway


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/chat/completions", CHAT),
        ("POST", "/v1/completions", {"model": MODEL, "prompt": "hi"}),
        ("GET", "/v1/models", None),
        ("POST", "/api/chat", CHAT),
        ("POST", "/api/generate", {"model": MODEL, "prompt": "hi"}),
        ("GET", "/api/tags", None),
        ("POST", "/api/show", {"model": MODEL}),
        ("GET", "/api/version", None),
        ("GET", f"/v1/models/{MODEL}", None),
        ("POST", "/v1/embeddings", {"model": MODEL, "input": "hi"}),
        ("POST", "/api/embed", {"model": MODEL, "input": "hi"}),
        ("POST", "/api/embeddings", {"model": MODEL, "prompt": "hi"}),
        ("GET", "/api/ps", None),
    ],
)
def test_without_a_token_every_gateway_route_is_401_in_its_protocols_shape(
    locked: GatewayServer, method: str, path: str, body: dict | None
) -> None:
    response = locked.http().request(method, path, json=body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    error = response.json()["error"]
    if path.startswith("/v1"):
        assert error["code"] == "invalid_api_key"
    else:
        assert isinstance(error, str) and "llm:generate" in error


def test_metrics_stay_open(locked: GatewayServer) -> None:
    assert locked.http().get("/metrics").status_code == 200


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        (
            {},
            "Not authenticated: send a token with permission llm:generate as "
            "'Authorization: Bearer <token>'",
        ),
        (
            {"Authorization": "Token abc"},
            "Malformed Authorization header: expected 'Authorization: Bearer <token>'",
        ),
        ({"Authorization": "Bearer nope"}, "Invalid token: it is unknown or has been revoked"),
        ({"api-key": "llmb_unknown_token"}, "Invalid token: it is unknown or has been revoked"),
    ],
)
def test_each_401_says_what_is_wrong(
    locked: GatewayServer, headers: dict[str, str], message: str
) -> None:
    http = locked.http()
    ollama = http.post("/api/chat", json=CHAT, headers=headers)
    assert (ollama.status_code, ollama.json()) == (401, {"error": message})
    openai = http.post("/v1/chat/completions", json=CHAT, headers=headers)
    assert openai.status_code == 401
    assert openai.json()["error"]["message"] == message


def test_bad_token_is_401_and_token_without_generate_is_403(locked: GatewayServer) -> None:
    http = locked.http()
    bad = http.post("/api/chat", json=CHAT, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401
    reader = create_token(locked, "llm_backends:read")
    denied = http.post("/v1/chat/completions", json=CHAT, headers={"api-key": reader})
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "insufficient_permissions"


def test_generate_token_in_each_protocols_usual_header(
    locked: GatewayServer, fake_ollama: FakeServer
) -> None:
    fake_ollama.configure(models=[])  # the default Ollama adds nothing to the list
    token = create_token(locked, "llm:generate")
    completion = locked.openai(api_key=token).chat.completions.create(
        model=MODEL, messages=CHAT["messages"]
    )
    assert completion.choices[0].message.content
    client = locked.ollama(headers={"Authorization": f"Bearer {token}"})
    assert client.generate(model=MODEL, prompt="hi").response
    assert [m.model for m in client.list().models] == [MODEL]
    http = locked.http()
    for header in ("api-key", "x-api-key"):
        response = http.post("/api/chat", json={**CHAT, "stream": False}, headers={header: token})
        assert response.status_code == 200


def test_bootstrap_token_is_accepted(locked: GatewayServer, fake_ollama: FakeServer) -> None:
    fake_ollama.configure(models=[])  # the default Ollama adds nothing to the list
    client = locked.openai(api_key=locked.server.token)
    assert [m.id for m in client.models.list().data] == [MODEL]


def test_clients_raise_their_auth_errors(locked: GatewayServer) -> None:
    with pytest.raises(openai.AuthenticationError):
        locked.openai(api_key="wrong").chat.completions.create(
            model=MODEL, messages=CHAT["messages"]
        )
    with pytest.raises(ollama.ResponseError) as raised:
        locked.ollama().chat(model=MODEL, messages=CHAT["messages"])
    assert raised.value.status_code == 401


class CountingAuthenticator:
    """Stands in for the token table: which tokens exist, and how often it was asked."""

    def __init__(self, scopes_by_token: dict[str, frozenset[str]]) -> None:
        self.scopes_by_token = scopes_by_token
        self.lookups = 0

    async def authenticate(self, token: str | None) -> Principal | None:
        self.lookups += 1
        scopes = self.scopes_by_token.get(token or "")
        return None if scopes is None else Principal(name="t", scopes=scopes)


def bearer(token: str) -> Request:
    headers = [(b"authorization", f"Bearer {token}".encode())]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers})


async def test_a_granted_token_is_remembered_for_ttl_seconds_only() -> None:
    now = [100.0]
    tokens = CountingAuthenticator({"good": frozenset({Scope.GENERATE})})
    auth = GatewayAuth(tokens, required=True, ttl=5.0, clock=lambda: now[0])  # type: ignore[arg-type]
    await auth.check(bearer("good"))
    await auth.check(bearer("good"))
    assert tokens.lookups == 1  # the second request did not query the token table
    del tokens.scopes_by_token["good"]  # revoked
    now[0] += 5.0
    with pytest.raises(GatewayError) as raised:
        await auth.check(bearer("good"))
    assert raised.value.status == 401
    with pytest.raises(GatewayError):
        await auth.check(bearer("bad"))
    with pytest.raises(GatewayError):
        await auth.check(bearer("bad"))
    assert tokens.lookups == 4  # refusals are never cached


async def test_auth_off_checks_nothing() -> None:
    tokens = CountingAuthenticator({})
    await GatewayAuth(tokens, required=False).check(bearer("anything"))  # type: ignore[arg-type]
    assert tokens.lookups == 0


GATEWAY_ROUTES = [
    ("POST", "/v1/chat/completions", CHAT),
    ("POST", "/v1/completions", {"model": MODEL, "prompt": "hi"}),
    ("GET", "/v1/models", None),
    ("POST", "/api/chat", {**CHAT, "stream": False}),
    ("POST", "/api/generate", {"model": MODEL, "prompt": "hi", "stream": False}),
    ("GET", "/api/tags", None),
    ("POST", "/api/show", {"model": MODEL}),
    ("GET", "/api/version", None),
    ("GET", f"/v1/models/{MODEL}", None),
    ("POST", "/v1/embeddings", {"model": MODEL, "input": "hi"}),
    ("POST", "/api/embed", {"model": MODEL, "input": "hi"}),
    ("POST", "/api/embeddings", {"model": MODEL, "prompt": "hi"}),
    ("GET", "/api/ps", None),
]


def test_every_gateway_route_with_every_kind_of_credential(locked: GatewayServer) -> None:
    """{no token, malformed header, unknown, revoked, read, write, generate, bootstrap}."""

    async def revoked_token() -> str:
        engine = create_engine(locked.server.settings.database_url)
        try:
            async with session_factory(engine)() as session:
                row, plain = await tokens.create_token(session, "gone", ["llm:generate"])
                assert await tokens.revoke_token(session, row.id)
        finally:
            await engine.dispose()
        return plain

    bearer = lambda token: {"Authorization": f"Bearer {token}"}  # noqa: E731
    credentials = {
        "none": ({}, 401),
        "malformed": ({"Authorization": "Bearer"}, 401),
        "wrong-scheme": ({"Authorization": f"Basic {locked.server.token}"}, 401),
        "unknown": (bearer("llmb_" + "u" * 43), 401),
        "revoked": (bearer(asyncio.run(revoked_token())), 401),
        "read": (bearer(create_token(locked, "llm_backends:read")), 403),
        "write": (bearer(create_token(locked, "llm_backends:write")), 403),
        "generate": (bearer(create_token(locked, "llm:generate")), 200),
        "bootstrap": (bearer(locked.server.token), 200),
    }
    http = locked.http()
    for name, (headers, expected) in credentials.items():
        for method, path, body in GATEWAY_ROUTES:
            response = http.request(method, path, json=body, headers=headers)
            assert response.status_code == expected, (name, path, response.text)
            if expected != 200:
                error = response.json()["error"]
                message = error["message"] if path.startswith("/v1") else error
                assert isinstance(message, str) and message
            for value in headers.values():
                secret = value.partition(" ")[2]
                if len(secret) > 8:
                    assert secret not in response.text
