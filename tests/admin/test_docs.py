"""/docs and /redoc work offline: every URL their pages load is this server's own, each is
served, and the schema declares the bearer scheme so Swagger UI's "Authorize" works."""

from __future__ import annotations

import re

import pytest

from tests.conftest import LiveServer

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*['"]([^'"]+)['"]""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_doc_pages_load_only_local_assets(live_server: LiveServer, page: str) -> None:
    with live_server.client() as client:
        html = client.get(page)
        assert html.status_code == 200 and "text/html" in html.headers["content-type"]
        urls = {a or b for a, b in ASSET.findall(html.text)}
        assert urls, html.text
        assert not re.search(r"https?://", html.text), "an absolute URL (a CDN?) in the page"
        for url in urls:
            assert url.startswith("/"), f"{page} loads {url} from elsewhere"
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert len(asset.content) > 1000 or url == "/openapi.json", url
    scripts = [u for u in urls if u.endswith(".js")]
    assert scripts, urls


def test_the_schema_declares_the_bearer_scheme(live_server: LiveServer) -> None:
    schema = live_server.client().get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes == {
        "HTTPBearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "An Admin API token: `llmb_...`.",
        }
    }
    paths = schema["paths"]
    for path, method in (
        ("/api/llm-backends", "get"),
        ("/api/llm-backends", "post"),
        ("/api/audit", "get"),
        ("/api/tokens", "post"),
        ("/api/auth/whoami", "get"),
    ):
        assert paths[path][method]["security"] == [{"HTTPBearer": []}], (path, method)
    assert "security" not in paths["/health"]["get"]
