"""The admin page, as a user clicks through it in a real browser."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from tests.fakes.common import FakeServer
from tests.fakes.fake_openai import OpenAIBehaviour
from tests.fakes.operator_server import OperatorServer
from tests.fakes.server import free_port
from tests.ui.conftest import shoot

SECRET = "sk-typed-into-the-page"


def sign_in(page: Page, server: OperatorServer, token: str) -> None:
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/ui/$"))
    page.fill("#token-input", token)
    page.click("#sign-in-form button[type=submit]")
    expect(page.locator("#app-view")).to_be_visible()


def row(page: Page, model: str):  # type: ignore[no-untyped-def]
    return page.locator("#config-rows tr").filter(
        has=page.locator(".model", has_text=re.compile(f"^{re.escape(model)}$"))
    )


def call_as(server: OperatorServer, token: str, method: str, path: str, **kwargs: object):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.request(method, server.url + path, headers=headers, **kwargs)  # type: ignore[arg-type]


def token_row(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator("#token-rows tr").filter(
        has=page.locator(".token-name", has_text=re.compile(f"^{re.escape(name)}"))
    )


def has_history(server: OperatorServer) -> bool:
    answer = httpx.get(
        server.url + "/api/llm-backends/1/history",
        headers={"Authorization": f"Bearer {server.write_token}"},
    )
    return answer.status_code != 404 or "Backend" in answer.text


def test_a_writer_creates_edits_toggles_tries_and_deletes_a_config(
    page: Page, server: OperatorServer, fake_backend: FakeServer[OpenAIBehaviour]
) -> None:
    fake_backend.reset()
    sign_in(page, server, server.write_token)
    expect(page.locator("#who-role")).to_have_text("read · write")
    assert page.evaluate("sessionStorage.length") == 1
    assert page.evaluate("localStorage.length") == 0
    shoot(page, "01-empty")

    # Create, with a bad URL first: the server's 422 shows beside the endpoint field.
    page.click("#new-config")
    form = page.locator("#config-form")
    form.locator("[name=model_name]").fill("tiny-chat")
    form.locator("[name=backend_type]").select_option("openai")
    form.locator("[name=endpoint_url]").fill("localhost-without-scheme")
    form.locator("[name=max_tokens]").fill("0")
    page.click("#config-save")
    url_error = form.locator("[data-field=endpoint_url] .field-error")
    expect(url_error).to_contain_text("http")
    expect(form.locator("[data-field=max_tokens] .field-error")).to_contain_text("greater than 0")
    expect(form.locator("[data-field=model_name] .field-error")).to_be_empty()
    shoot(page, "02-validation-error")
    form.locator("[name=endpoint_url]").fill(fake_backend.url)
    form.locator("[name=max_tokens]").fill("256")
    form.locator("[name=api_key]").fill(SECRET)
    page.click("#config-save")
    expect(page.locator("#config-dialog")).not_to_be_visible()
    expect(row(page, "tiny-chat")).to_have_count(1)
    expect(row(page, "tiny-chat")).to_contain_text("openai")
    expect(row(page, "tiny-chat")).to_contain_text(fake_backend.url)

    # Edit: the form comes filled in; the change shows in the table.
    row(page, "tiny-chat").locator("[data-action=edit]").click()
    expect(form.locator("[name=endpoint_url]")).to_have_value(fake_backend.url)
    expect(form.locator("[name=api_key]")).to_have_value("")  # write-only: never sent back
    expect(page.locator("#api-key-hint")).to_contain_text("set; leave empty to keep it")
    form.locator("[name=description]").fill("The fake vLLM on loopback")
    page.click("#config-save")
    expect(row(page, "tiny-chat").locator(".description")).to_have_text("The fake vLLM on loopback")

    # Toggle off and on again.
    switch = row(page, "tiny-chat").locator("[data-action=toggle]")
    switch.click()
    expect(row(page, "tiny-chat").locator("[data-action=toggle]")).to_have_attribute(
        "aria-checked", "false"
    )
    # The service lookup answers a disabled config with enabled false (README, guide's Issue 5).
    looked_up = httpx.get(server.url + "/api/llm-backends/model/tiny-chat")
    assert looked_up.status_code == 200 and looked_up.json()["enabled"] is False
    row(page, "tiny-chat").locator("[data-action=toggle]").click()
    expect(row(page, "tiny-chat").locator("[data-action=toggle]")).to_have_attribute(
        "aria-checked", "true"
    )

    # Try it: the answer streams in from the fake backend; who answered and the timings show.
    fake_backend.state.behaviour.reply = "Streamed hello from the fake vLLM."
    fake_backend.state.behaviour.chunks = 6
    row(page, "tiny-chat").locator("[data-action=try]").click()
    expect(page.locator("#try-model")).to_have_value("tiny-chat")
    page.fill("#try-prompt", "Say hello")
    page.click("#try-send")
    expect(page.locator("#try-output")).to_have_attribute("data-done", "true")
    expect(page.locator("#try-output")).to_have_text("Streamed hello from the fake vLLM.")
    # x-llm-backend and x-llm-endpoint: who answered.
    expect(page.locator("#try-backend")).to_have_text(f"openai · {fake_backend.url}")
    expect(page.locator("#try-ttft")).to_have_text(re.compile(r"\d+(\.\d+)? m?s"))
    expect(page.locator("#try-tokens")).to_have_text("6")
    sent = [r for r in fake_backend.state.requests if r.path == "/v1/chat/completions"]
    assert sent[-1].body["stream"] is True
    assert sent[-1].body["messages"] == [{"role": "user", "content": "Say hello"}]
    assert sent[-1].headers["authorization"] == f"Bearer {SECRET}"  # the key reached the backend
    assert SECRET not in page.content()

    # The last hour's chart counts the request (this process's own history).
    page.reload()
    expect(row(page, "tiny-chat").locator(".chart-label").first).to_have_text("1 req")
    shoot(page, "03-table")

    # History, from the audit log when this server keeps one.
    row(page, "tiny-chat").locator("[data-action=history]").click()
    history = page.locator("#history-list")
    if has_history(server):
        expect(history.locator("li")).to_have_count(4)  # create, update, toggle, toggle
        expect(history).to_contain_text("Created")
        expect(history).to_contain_text("The fake vLLM on loopback")
    else:
        expect(history).to_contain_text("keeps no audit log")
    shoot(page, "04-history")
    page.locator("#history-dialog [data-close]").click()

    # Delete asks first: cancel keeps it, confirm removes it.
    row(page, "tiny-chat").locator("[data-action=delete]").click()
    expect(page.locator("#confirm-dialog")).to_be_visible()
    expect(page.locator("#confirm-name")).to_have_text("tiny-chat")
    shoot(page, "05-confirm-delete")
    page.click("#confirm-dialog button[value=cancel]")
    expect(row(page, "tiny-chat")).to_have_count(1)
    row(page, "tiny-chat").locator("[data-action=delete]").click()
    page.click("#confirm-delete")
    expect(row(page, "tiny-chat")).to_have_count(0)
    # Recent changes (the whole audit log) has the delete on top, named and attributed.
    if has_history(server):
        newest = page.locator("#activity-list li").first
        expect(newest.locator(".what")).to_have_text("Deleted tiny-chat by bootstrap")
    assert page.dialogs == []


def test_a_token_manager_creates_a_token_sees_it_once_and_revokes_it(
    page: Page, server: OperatorServer
) -> None:
    sign_in(page, server, server.write_token)
    panel = page.locator("#tokens-panel")
    expect(panel).to_be_visible()
    expect(token_row(page, "viewer")).to_contain_text("llm_backends:read")  # the fixture's
    # The bootstrap token has every scope, so every scope is offered.
    expect(panel.locator("input[name=scopes]")).to_have_count(6)

    # No scope chosen: said beside the form, nothing created.
    page.fill("#token-name", "ci-reader")
    page.click("#token-create")
    expect(page.locator("#token-error")).to_have_text("scopes: choose at least one")
    expect(token_row(page, "ci-reader")).to_have_count(0)

    panel.locator("input[value='llm_backends:read']").check()
    page.click("#token-create")
    expect(page.locator("#new-token")).to_be_visible()
    expect(page.locator("#new-token-name")).to_have_text("ci-reader")
    created = page.locator("#new-token-value").input_value()
    assert created.startswith("llmb_")
    expect(token_row(page, "ci-reader")).to_contain_text("active")
    expect(page.locator("#activity-list li").first.locator(".what")).to_have_text(
        "Token created ci-reader by bootstrap"
    )
    shoot(page, "09-tokens")
    shoot(page, "09-tokens-panel", "#tokens-panel")
    # The token shown works, with the scope chosen and no other.
    assert call_as(server, created, "GET", "/api/llm-backends").status_code == 200
    assert call_as(server, created, "GET", "/api/auth/whoami").json()["scopes"] == [
        "llm_backends:read"
    ]
    assert call_as(server, created, "POST", "/api/llm-backends", json={}).status_code == 403
    # Shown once: the list carries no token value, and signing out takes it off the page.
    listed = call_as(server, server.write_token, "GET", "/api/tokens").json()
    assert all("token" not in item for item in listed)
    page.click("#sign-out")
    assert page.locator("#new-token-value").input_value() == ""
    sign_in(page, server, server.write_token)
    expect(page.locator("#new-token")).to_be_hidden()
    expect(token_row(page, "ci-reader")).to_contain_text("active")

    # Revoke asks first: cancel keeps it working, confirm ends it at once.
    token_row(page, "ci-reader").locator("[data-action=revoke]").click()
    expect(page.locator("#revoke-name")).to_have_text("ci-reader")
    page.click("#revoke-dialog button[value=cancel]")
    assert call_as(server, created, "GET", "/api/llm-backends").status_code == 200
    token_row(page, "ci-reader").locator("[data-action=revoke]").click()
    page.click("#confirm-revoke")
    expect(token_row(page, "ci-reader")).to_contain_text("revoked")
    expect(token_row(page, "ci-reader").locator("[data-action=revoke]")).to_have_count(0)
    expect(page.locator("#activity-list li").first.locator(".what")).to_have_text(
        "Token revoked ci-reader by bootstrap"
    )
    assert call_as(server, created, "GET", "/api/llm-backends").status_code == 401
    assert page.dialogs == []


def test_a_manager_grants_only_its_own_scopes_and_can_revoke_itself(
    page: Page, server: OperatorServer
) -> None:
    made = call_as(
        server,
        server.write_token,
        "POST",
        "/api/tokens",
        json={"name": "team-lead", "scopes": ["tokens:manage", "llm_backends:read"]},
    )
    assert made.status_code == 201, made.text
    own = made.json()["token"]
    sign_in(page, server, own)
    panel = page.locator("#tokens-panel")
    offered = panel.locator("input[name=scopes]")
    expect(offered).to_have_count(2)
    assert sorted(offered.evaluate_all("boxes => boxes.map(b => b.value)")) == [
        "llm_backends:read",
        "tokens:manage",
    ]
    expect(token_row(page, "team-lead")).to_contain_text("(this page)")

    # Revoking the page's own token signs the page out.
    token_row(page, "team-lead").locator("[data-action=revoke]").click()
    page.click("#confirm-revoke")
    expect(page.locator("#sign-in-view")).to_be_visible()
    expect(page.locator("#sign-in-error")).to_have_text("You revoked the token this page used.")
    assert page.evaluate("sessionStorage.length") == 0
    assert call_as(server, own, "GET", "/api/llm-backends").status_code == 401


def test_recent_changes_page_through_the_audit_log(
    page: Page, server: OperatorServer, fake_backend: FakeServer[OpenAIBehaviour]
) -> None:
    auth = {"Authorization": f"Bearer {server.write_token}"}
    ids = []
    try:
        for i in range(25):
            body = {"model_name": f"bulk-{i:02d}", "backend_type": "openai"}
            created = httpx.post(
                server.url + "/api/llm-backends",
                headers=auth,
                json={**body, "endpoint_url": fake_backend.url},
            )
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        total = httpx.get(server.url + "/api/audit", headers=auth).json()["total"]
        sign_in(page, server, server.read_token)  # reading the log needs read, not write
        entries = page.locator("#activity-list li")
        expect(entries).to_have_count(20)
        newest = entries.first
        expect(newest.locator(".what")).to_have_text("Created bulk-24 by bootstrap")
        expect(page.locator("#activity-count")).to_have_text(f"{total} in all")
        # The fields fold into their names; a click shows the values.
        expect(newest.locator("summary")).to_contain_text("model_name, backend_type")
        expect(newest.locator(".changes")).to_be_hidden()
        newest.locator("summary").click()
        expect(newest.locator(".changes")).to_contain_text("bulk-24")
        page.click("#activity-more")
        expect(entries).to_have_count(min(40, total))
        expect(entries.nth(20).locator(".what")).to_have_text("Created bulk-04 by bootstrap")
        shoot(page, "10-recent-changes", "#activity-panel")
    finally:
        for config_id in ids:
            httpx.delete(f"{server.url}/api/llm-backends/{config_id}", headers=auth)


HOSTILE_NAME = "<img src=x onerror=alert('name')>"
HOSTILE_DESCRIPTION = (
    "<script>window.injected = 1; alert('script')</script>"
    "<img src=x onerror=\"window.injected = 2; alert('description')\">"
)


def test_what_users_typed_is_shown_as_text_and_runs_nothing(
    page: Page, server: OperatorServer, fake_backend: FakeServer[OpenAIBehaviour]
) -> None:
    created = httpx.post(
        server.url + "/api/llm-backends",
        headers={"Authorization": f"Bearer {server.write_token}"},
        json={
            "model_name": HOSTILE_NAME,
            "backend_type": "openai",
            "endpoint_url": fake_backend.url,
            "description": HOSTILE_DESCRIPTION,
        },
    )
    assert created.status_code == 201, created.text
    hostile_token = call_as(
        server,
        server.write_token,
        "POST",
        "/api/tokens",
        json={"name": HOSTILE_NAME, "scopes": ["llm_backends:read"]},
    )
    assert hostile_token.status_code == 201, hostile_token.text
    try:
        sign_in(page, server, server.write_token)
        expect(token_row(page, HOSTILE_NAME).locator(".token-name")).to_have_text(HOSTILE_NAME)
        expect(page.locator("#activity-list .target").first).to_have_text(f" {HOSTILE_NAME}")
        hostile = row(page, HOSTILE_NAME)
        expect(hostile.locator(".model")).to_have_text(HOSTILE_NAME)
        expect(hostile.locator(".description")).to_have_text(HOSTILE_DESCRIPTION)
        hostile.locator("[data-action=edit]").click()
        expect(page.locator("#config-title")).to_have_text(f"Edit {HOSTILE_NAME}")
        page.locator("#config-dialog [data-close]").click()
        hostile.locator("[data-action=history]").click()
        expect(page.locator("#history-name")).to_have_text(HOSTILE_NAME)
        page.locator("#history-dialog [data-close]").click()
        hostile.locator("[data-action=delete]").click()
        expect(page.locator("#confirm-name")).to_have_text(HOSTILE_NAME)
        page.click("#confirm-dialog button[value=cancel]")
        shoot(page, "06-hostile-text")

        assert page.locator("main img, dialog img").count() == 0
        assert page.locator("main script, dialog script").count() == 0
        assert page.evaluate("window.injected") is None
        assert page.dialogs == []
    finally:
        httpx.delete(
            f"{server.url}/api/llm-backends/{created.json()['id']}",
            headers={"Authorization": f"Bearer {server.write_token}"},
        )
        call_as(server, server.write_token, "DELETE", f"/api/tokens/{hostile_token.json()['id']}")


def test_a_read_token_sees_but_cannot_edit(
    page: Page, server: OperatorServer, fake_backend: FakeServer[OpenAIBehaviour]
) -> None:
    created = httpx.post(
        server.url + "/api/llm-backends",
        headers={"Authorization": f"Bearer {server.write_token}"},
        json={
            "model_name": "seen-only",
            "backend_type": "openai",
            "endpoint_url": fake_backend.url,
        },
    )
    config_id = created.json()["id"]
    try:
        sign_in(page, server, server.read_token)
        expect(page.locator("#who-role")).to_have_text("read only")
        expect(row(page, "seen-only")).to_have_count(1)
        expect(page.locator("#new-config")).to_be_hidden()
        expect(page.locator("#tokens-panel")).to_be_hidden()  # no tokens:manage
        for action in ("edit", "delete", "toggle"):
            expect(page.locator(f"[data-action={action}]")).to_have_count(0)
        expect(row(page, "seen-only")).to_contain_text("enabled")
        shoot(page, "07-read-only")
        # Even if the page were tricked, the API refuses the token's writes.
        status = page.evaluate(
            """async (id) => (await fetch(`/api/llm-backends/${id}/toggle`, {method: "POST",
                headers: {Authorization: `Bearer ${sessionStorage.getItem("llm-backends.token")}`}
              })).status""",
            config_id,
        )
        assert status == 403
    finally:
        httpx.delete(
            f"{server.url}/api/llm-backends/{config_id}",
            headers={"Authorization": f"Bearer {server.write_token}"},
        )


def test_a_bad_token_is_refused_at_sign_in(page: Page, server: OperatorServer) -> None:
    page.goto(server.url + "/ui/")
    page.fill("#token-input", "llmb_not_a_real_token")
    page.click("#sign-in-form button[type=submit]")
    expect(page.locator("#sign-in-error")).to_contain_text("not valid")
    expect(page.locator("#app-view")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0
    shoot(page, "00-sign-in")


def test_the_page_is_served_with_a_strict_content_security_policy(server: OperatorServer) -> None:
    answer = httpx.get(server.url + "/ui/")
    assert answer.status_code == 200 and "<title>llm-backends</title>" in answer.text
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert (
        httpx.get(server.url + "/ui/js/main.js")
        .headers["content-type"]
        .startswith(("text/javascript", "application/javascript"))
    )


def test_an_overview_of_several_configs_with_traffic(
    page: Page, server: OperatorServer, fake_backend: FakeServer[OpenAIBehaviour]
) -> None:
    """Several backends, some traffic and a dead server: what an operator sees day to day."""
    fake_backend.reset()
    fake_backend.state.behaviour.reply = "A short answer from the fake server, in pieces."
    fake_backend.state.behaviour.chunks = 12
    auth = {"Authorization": f"Bearer {server.write_token}"}
    dead = f"http://127.0.0.1:{free_port()}"
    configs = [
        {
            "model_name": "llama3.1:8b",
            "backend_type": "ollama",
            "endpoint_url": server.env["OLLAMA_URL"],
            "backend_model": "llama3.2:latest",
            "description": "Laptop Ollama",
        },
        {
            "model_name": "qwen2.5-coder",
            "backend_type": "openai",
            "endpoint_url": fake_backend.url,
            "description": "vLLM on the GPU box",
        },
        {
            "model_name": "mistral-mlx",
            "backend_type": "mlx",
            "endpoint_url": dead,
            "description": "Mac mini (switched off)",
        },
        {
            "model_name": "phi3:mini",
            "backend_type": "ollama",
            "endpoint_url": dead,
            "enabled": False,
        },
    ]
    ids = []
    try:
        for body in configs:
            created = httpx.post(server.url + "/api/llm-backends", headers=auth, json=body)
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        chat = {"messages": [{"role": "user", "content": "hi"}]}
        for model, times in (("qwen2.5-coder", 5), ("llama3.1:8b", 3), ("mistral-mlx", 2)):
            for _ in range(times):
                httpx.post(
                    server.url + "/v1/chat/completions", json={**chat, "model": model}, timeout=30
                )

        sign_in(page, server, server.write_token)
        expect(page.locator("#config-rows tr")).to_have_count(4)
        expect(row(page, "qwen2.5-coder").locator(".chart-label").first).to_have_text("5 req")
        expect(row(page, "mistral-mlx").locator(".chart-label").nth(1)).to_have_text("2 err")
        expect(row(page, "phi3:mini")).to_have_class("disabled")
        # Live health from the status endpoint's probes: the switched-off server turns red.
        expect(row(page, "mistral-mlx").locator(".dot.down")).to_have_count(1, timeout=15_000)
        expect(row(page, "qwen2.5-coder").locator(".dot.up")).to_have_count(1, timeout=15_000)
        # The stats the gateway reports to the store reach the table's columns.
        expect(row(page, "qwen2.5-coder").locator("td.num").first).to_have_text("5", timeout=15_000)
        expect(row(page, "llama3.1:8b").locator("td.num").first).to_have_text("3", timeout=15_000)
        row(page, "qwen2.5-coder").locator("[data-action=try]").click()
        page.fill("#try-prompt", "Write a haiku about routers")
        page.click("#try-send")
        expect(page.locator("#try-output")).to_have_attribute("data-done", "true")
        expect(page.locator("#try-tokens")).to_have_text("12")
        page.mouse.move(0, 0)
        shoot(page, "08-overview")
    finally:
        for config_id in ids:
            httpx.delete(f"{server.url}/api/llm-backends/{config_id}", headers=auth)
